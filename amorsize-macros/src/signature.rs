//! Signature analysis: which parameter is the item, how it is passed, what else the function
//! takes. Describes the signature without judging it; `valid` judges.

use syn::{FnArg, Ident, Pat, PatType, ReceiverKind, Type};

/// How the per-item function receives `self`.
pub enum Receiver<'a> {
    /// A free function (or an associated function without `self`).
    None,
    /// `&self`: the companion is a method too.
    Shared,
    /// Anything else (`self`, `&mut self`, `self: Box<Self>`); rejected by `valid`.
    Other(&'a syn::Receiver),
}

/// For a shared receiver, `&self` or its long form `self: &Self` (with or without a
/// lifetime): `Some` of its lifetime, if it names one. `None` for any other receiver.
pub fn shared_self(r: &syn::Receiver) -> Option<Option<&syn::Lifetime>> {
    match &r.kind {
        ReceiverKind::Reference(_, lifetime, None) => Some(lifetime.as_ref()),
        ReceiverKind::Typed(_, ty) => match &**ty {
            Type::Reference(reference)
                if reference.mutability.is_none() && is_self(&reference.elem) =>
            {
                Some(reference.lifetime.as_ref())
            }
            _ => None,
        },
        _ => None,
    }
}

/// `true` for the type `Self`.
fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// How the item reaches the function.
pub enum ItemPass<'a> {
    /// `x: &T` (also `&str`, `&[U]`): the companion takes a slice of things that borrow as `T`.
    Borrowed {
        reference: &'a syn::TypeReference,
        target: &'a Type,
    },
    /// `x: T`: the companion takes owned items.
    Owned(&'a Type),
}

/// A parameter after the item: the same value is handed to every item's call.
pub struct Context<'a> {
    pub arg: &'a PatType,
    /// The name the companion gives it: the user's own when it is a plain identifier.
    pub ident: Ident,
    /// `true` for `&U` (shared by reference); `false` for a value cloned for each item.
    pub by_ref: bool,
}

/// A per-item function's signature, taken apart.
pub struct Shape<'a> {
    pub receiver: Receiver<'a>,
    pub item: Option<(&'a PatType, ItemPass<'a>)>,
    pub context: Vec<Context<'a>>,
}

impl<'a> Shape<'a> {
    pub fn of(sig: &'a syn::Signature) -> Shape<'a> {
        let mut receiver = Receiver::None;
        let mut typed = Vec::new();
        for arg in &sig.inputs {
            match arg {
                FnArg::Receiver(r) => {
                    receiver = if shared_self(r).is_some() {
                        Receiver::Shared
                    } else {
                        Receiver::Other(r)
                    }
                }
                FnArg::Typed(pat_type) => typed.push(pat_type),
            }
        }
        let mut typed = typed.into_iter();
        let item = typed.next().map(|arg| {
            let pass = match &*arg.ty {
                Type::Reference(reference) => ItemPass::Borrowed {
                    reference,
                    target: &reference.elem,
                },
                other => ItemPass::Owned(other),
            };
            (arg, pass)
        });
        let context = typed
            .enumerate()
            .map(|(i, arg)| Context {
                arg,
                ident: match &*arg.pat {
                    Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
                    _ => quote::format_ident!("__amorsize_context_{}", i),
                },
                by_ref: matches!(&*arg.ty, Type::Reference(_)),
            })
            .collect();
        Shape {
            receiver,
            item,
            context,
        }
    }
}
