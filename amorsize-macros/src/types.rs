//! Questions about the user's types and tokens that code generation asks: does this type
//! mention a lifetime, a generic parameter, `Self`, an `impl Trait`; which primitive type
//! names a const parameter. Pure syntax, no judgement (that is `valid`'s).

use proc_macro2::TokenStream;
use quote::quote;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;

/// `true` when `ty` mentions a lifetime, named or elided (references included).
pub fn has_lifetimes(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// `true` when `ty` contains an `impl Trait`.
pub fn has_impl_trait(ty: &syn::Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

/// `true` when `ty` names one of `generics`' type or const parameters, or `Self`: a bound
/// on it depends on the caller's choice and belongs in a where-clause. A bound on any other
/// type is decided where the function is defined, and is checked there instead.
pub fn mentions_generics(ty: &syn::Type, generics: &syn::Generics) -> bool {
    let params = generics
        .params
        .iter()
        .filter_map(|p| match p {
            syn::GenericParam::Type(t) => Some(&t.ident),
            syn::GenericParam::Const(c) => Some(&c.ident),
            syn::GenericParam::Lifetime(_) => None,
        })
        .collect();
    names_any(ty, params, true)
}

/// `true` when a borrowed item's type names one of the function's type parameters and is
/// not a `str` or slice (which only `Borrow` can reach from owned elements).
/// A type parameter declared `?Sized` (`fn f<T: ?Sized + Hash>(x: &T)`) is not: its
/// elements cannot form a slice, so it is reached through `Borrow` too.
pub fn is_generic_sized(target: &syn::Type, generics: &syn::Generics) -> bool {
    !matches!(target, syn::Type::Slice(_))
        && !is_maybe_sized_param(target, generics)
        && names_any(
            target,
            generics.type_params().map(|t| &t.ident).collect(),
            false,
        )
}

/// `true` when `ty` is one of the function's type parameters, declared `?Sized` in its list
/// or in the `where` clause.
fn is_maybe_sized_param(ty: &syn::Type, generics: &syn::Generics) -> bool {
    let syn::Type::Path(path) = ty else {
        return false;
    };
    let Some(ident) = path.path.get_ident().filter(|_| path.qself.is_none()) else {
        return false;
    };
    let maybe = |bounds: &syn::punctuated::Punctuated<syn::TypeParamBound, syn::Token![+]>| {
        bounds
            .iter()
            .any(|bound| matches!(bound, syn::TypeParamBound::Trait(t) if t.maybe.is_some()))
    };
    let in_list = generics
        .type_params()
        .any(|param| &param.ident == ident && maybe(&param.bounds));
    let in_where = generics.where_clause.iter().any(|clause| {
        clause.predicates.iter().any(|predicate| {
            matches!(predicate, syn::WherePredicate::Type(p)
                if matches!(&p.bounded_ty, syn::Type::Path(b) if b.path.is_ident(ident))
                    && maybe(&p.bounds))
        })
    });
    in_list || in_where
}

/// `true` when a path in `ty` starts with one of `params` (or `Self`, if `or_self`).
fn names_any(ty: &syn::Type, params: Vec<&syn::Ident>, or_self: bool) -> bool {
    struct Finder<'a> {
        params: Vec<&'a syn::Ident>,
        or_self: bool,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(first) = path.segments.first() {
                let is_self = self.or_self && first.ident == "Self";
                if is_self || self.params.contains(&&first.ident) {
                    self.found = true;
                }
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut finder = Finder {
        params,
        or_self,
        found: false,
    };
    finder.visit_type(ty);
    finder.found
}

/// `true` when the signature's parameter or result types mention `Self`.
pub fn signature_mentions_self(sig: &syn::Signature) -> bool {
    let mut finder = SelfFinder(false);
    for arg in &sig.inputs {
        if let syn::FnArg::Typed(pat_type) = arg {
            finder.visit_type(&pat_type.ty);
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output {
        finder.visit_type(ty);
    }
    finder.0
}

/// `true` when the function's body names `Self` outside any item nested in it (a nested
/// `impl` has a `Self` of its own): only an associated function can.
pub fn body_mentions_self(block: &syn::Block) -> bool {
    let mut finder = SelfFinder(false);
    finder.visit_block(block);
    finder.0
}

struct SelfFinder(bool);

impl<'ast> Visit<'ast> for SelfFinder {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.segments.first().is_some_and(|s| s.ident == "Self") {
            self.0 = true;
        }
        syn::visit::visit_path(self, path);
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // `Self` inside a macro call's tokens (`vec![Self::ZERO; n]`) counts too.
        let mentions = mac
            .tokens
            .clone()
            .into_iter()
            .any(|tt| matches!(&tt, proc_macro2::TokenTree::Ident(ident) if ident == "Self"));
        self.0 |= mentions;
        syn::visit::visit_macro(self, mac);
    }
}

/// `ty` without the parentheses around it: `(dyn Shape + Sync)` as the generated code names
/// it where it stands alone (a generic argument, a bound's subject), where rustc's
/// `unused_parens` lint would flag the user's own, needed, parentheses.
pub fn unparenthesized(mut ty: &syn::Type) -> &syn::Type {
    while let syn::Type::Paren(paren) = ty {
        ty = &paren.elem;
    }
    ty
}

/// Renames elided lifetimes (`'_`, `&T`) in `ty` to fresh named ones, returned in `named`.
/// Lifetimes inside `fn(&T)` types and `Fn(&T)` sugar are higher-ranked and left alone.
pub fn name_elided_lifetimes(ty: &syn::Type, named: &mut Vec<syn::Lifetime>) -> syn::Type {
    struct Namer<'a>(&'a mut Vec<syn::Lifetime>);
    impl Namer<'_> {
        fn fresh(&mut self, span: proc_macro2::Span) -> syn::Lifetime {
            let lifetime = syn::Lifetime::new(&format!("'__amorsize_{}", self.0.len()), span);
            self.0.push(lifetime.clone());
            lifetime
        }
    }
    impl VisitMut for Namer<'_> {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = self.fresh(lifetime.span());
            }
        }
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            if reference.lifetime.is_none() {
                reference.lifetime = Some(self.fresh(reference.and_token.span));
            }
            syn::visit_mut::visit_type_reference_mut(self, reference);
        }
        fn visit_type_fn_ptr_mut(&mut self, _: &mut syn::TypeFnPtr) {}
        fn visit_parenthesized_generic_arguments_mut(
            &mut self,
            _: &mut syn::ParenthesizedGenericArguments,
        ) {
        }
    }
    let mut ty = ty.clone();
    Namer(named).visit_type_mut(&mut ty);
    ty
}

/// `ty` with its elided lifetimes (`'_`, `&T`) made `'static`: what an async companion,
/// whose future outlives the call, takes in their place.
pub fn static_elided_lifetimes(ty: &syn::Type) -> syn::Type {
    struct Static;
    impl VisitMut for Static {
        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident.to_string().starts_with("__amorsize_") {
                *lifetime = syn::Lifetime::new("'static", lifetime.span());
            }
        }
    }
    let mut named = Vec::new();
    let mut ty = name_elided_lifetimes(ty, &mut named);
    Static.visit_type_mut(&mut ty);
    ty
}

/// A type that names the value of const parameter `ident` of primitive type `ty`, for a
/// site key; `None` for a type the macro cannot recognise (an alias, say). `krate` is the
/// path to the amorsize crate.
pub fn const_key(ty: &syn::Type, ident: &syn::Ident, krate: &TokenStream) -> Option<TokenStream> {
    let syn::Type::Path(p) = ty else {
        return None;
    };
    if p.qself.is_some() {
        return None;
    }
    let key = match p.path.get_ident()?.to_string().as_str() {
        "usize" => return Some(quote!([(); #ident])),
        "u8" => "ConstU8",
        "u16" => "ConstU16",
        "u32" => "ConstU32",
        "u64" => "ConstU64",
        "u128" => "ConstU128",
        "i8" => "ConstI8",
        "i16" => "ConstI16",
        "i32" => "ConstI32",
        "i64" => "ConstI64",
        "i128" => "ConstI128",
        "isize" => "ConstIsize",
        "bool" => "ConstBool",
        "char" => "ConstChar",
        _ => return None,
    };
    let key = syn::Ident::new(key, proc_macro2::Span::call_site());
    Some(quote!(#krate::__private::#key<#ident>))
}
