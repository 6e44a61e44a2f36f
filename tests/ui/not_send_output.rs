use std::rc::Rc;

#[amorsize::parallel]
fn wrap(x: &u32) -> Rc<u32> {
    Rc::new(*x)
}

fn main() {}
