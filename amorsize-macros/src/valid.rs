//! Every rule a per-item function must follow, in one place. Each broken rule becomes a
//! `syn::Error` spanned on the user's offending tokens; all of them are reported together.

use crate::attr::push;
use crate::signature::{ItemPass, Receiver, Shape};
use syn::{ItemFn, Type};

pub fn check(func: &ItemFn, shape: &Shape) -> Result<(), syn::Error> {
    let sig = &func.sig;
    let mut errors = None;
    let mut fail = |tokens: &dyn quote::ToTokens, message: &str| {
        push(&mut errors, syn::Error::new_spanned(tokens, message));
    };

    if let Some(asyncness) = &sig.asyncness {
        fail(
            asyncness,
            "#[amorsize::parallel] cannot run an `async fn` per item; make it a plain `fn` (block on the future inside it if needed)",
        );
    }
    if let syn::Safety::Unsafe(unsafety) = &sig.safety {
        fail(
            unsafety,
            "#[amorsize::parallel] cannot call an `unsafe fn` for you; make the per-item function safe and keep the `unsafe` block inside it",
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(
            variadic,
            "#[amorsize::parallel] does not support variadic functions",
        );
    }
    if let Receiver::Other(receiver) = &shape.receiver {
        let message = match &receiver.kind {
            syn::ReceiverKind::Reference(..) => {
                "items run in parallel, so they cannot share `&mut self`; take `&self` (with interior mutability such as a `Mutex` or atomics if needed)"
            }
            syn::ReceiverKind::Value if receiver.mutability.is_some() => {
                "the companion calls this method once per item, so it cannot take `mut self` by value; take `&self`"
            }
            syn::ReceiverKind::Value => {
                "the companion calls this method once per item, so it cannot take `self` by value; take `&self`"
            }
            syn::ReceiverKind::Typed(_, ty)
                if matches!(&**ty, syn::Type::Reference(r) if r.mutability.is_some()) =>
            {
                "items run in parallel, so they cannot share `self: &mut Self`; take `&self` (with interior mutability such as a `Mutex` or atomics if needed)"
            }
            _ => "only `&self` methods are supported; take `&self`",
        };
        fail(receiver, message);
    }

    match &shape.item {
        None => {
            let message = match shape.receiver {
                Receiver::None => "#[amorsize::parallel] needs a parameter for the item: the first parameter receives one item, e.g. `fn score(x: &u64) -> u64`",
                _ => "#[amorsize::parallel] needs a parameter for the item after `self`, e.g. `fn score(&self, x: &u64) -> u64`",
            };
            fail(&sig.ident, message);
        }
        Some((arg, pass)) => match pass {
            ItemPass::Borrowed { reference, target } => {
                if let Some(mutability) = &reference.mutability {
                    fail(
                            mutability,
                            "items run in parallel and are read-only: take the item as `&T` or by value, not `&mut T`",
                        );
                }
                if crate::types::has_impl_trait(target) {
                    fail(&arg.ty, "`impl Trait` items are not supported; name the type with a generic parameter: `fn f<T: Trait>(x: &T)`");
                }
            }
            ItemPass::Owned(ty) => {
                if crate::types::has_impl_trait(ty) {
                    fail(&arg.ty, "`impl Trait` items are not supported; name the type with a generic parameter: `fn f<T: Trait>(x: T)`");
                }
            }
        },
    }

    for context in &shape.context {
        let ty = &*context.arg.ty;
        if let Type::Reference(reference) = ty {
            if let Some(mutability) = &reference.mutability {
                fail(
                    mutability,
                    "every item's call shares this parameter, so it cannot be `&mut`; take `&T` (with a `Mutex` or atomics inside if the items must write to it)",
                );
            }
        }
        if crate::types::has_impl_trait(ty) {
            fail(
                ty,
                "`impl Trait` parameters are not supported; name the type with a generic parameter",
            );
        }
    }

    match errors {
        Some(err) => Err(err),
        None => Ok(()),
    }
}
