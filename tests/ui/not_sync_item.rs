use std::rc::Rc;

#[amorsize::parallel]
fn read(x: &Rc<u32>) -> u32 {
    **x
}

fn main() {
    let items = vec![Rc::new(1)];
    par_read(&items);
}
