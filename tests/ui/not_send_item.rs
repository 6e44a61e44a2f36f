use std::rc::Rc;

#[amorsize::parallel]
fn unwrap(x: Rc<u32>) -> u32 {
    *x
}

fn main() {
    par_unwrap(vec![Rc::new(1)]);
}
