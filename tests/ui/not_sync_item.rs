use std::rc::Rc;

#[amorsize::parallel]
fn read(x: &Rc<u32>) -> u32 {
    **x
}

fn main() {}
