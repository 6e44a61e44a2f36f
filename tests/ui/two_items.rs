struct Point(f64, f64);

#[amorsize::parallel]
fn dist(a: &Point, b: &Point) -> f64 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

fn main() {
    let xs = vec![Point(0.0, 0.0)];
    let ys = vec![Point(3.0, 4.0)];
    par_dist(&xs, &ys);
}
