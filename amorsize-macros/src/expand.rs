//! Code generation: the user's function, unchanged, and its `par_` companion beside it.

use crate::attr::{push, Mode, Options};
use crate::signature::{ItemPass, Receiver, Shape};
use crate::valid;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{GenericParam, ItemFn, ReturnType, WherePredicate};

/// The attribute's whole expansion. Errors come back as `compile_error!`s next to the
/// user's function, emitted as written so one mistake does not cascade.
pub fn parallel(args: TokenStream, input: TokenStream) -> TokenStream {
    let options = Options::parse(args);
    let func: ItemFn = match syn::parse2(input.clone()) {
        Ok(func) => func,
        Err(_) => return not_a_function(input, options.err()),
    };
    let shape = Shape::of(&func.sig);
    let mut errors = None;
    let options = options.map_err(|err| push(&mut errors, err)).ok();
    if let Err(err) = valid::check(&func, &shape) {
        push(&mut errors, err);
    }
    match (errors, options) {
        (None, Some(options)) => {
            let companion = companion(&func, &shape, &options);
            quote!(#func #companion)
        }
        (Some(err), _) => {
            let err = err.to_compile_error();
            quote!(#input #err)
        }
        (None, None) => unreachable!("options failed without an error"),
    }
}

/// The error for an attribute placed on something that is not a function.
fn not_a_function(input: TokenStream, options_error: Option<syn::Error>) -> TokenStream {
    let what = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(item) => describe(&item),
        Err(_) => "this",
    };
    let mut err = syn::Error::new(
        first_span(&input),
        format!(
            "#[amorsize::parallel] goes on a function that handles one item, e.g. `fn score(x: &u64) -> u64`; {what} is not a function"
        ),
    );
    if let Some(options_error) = options_error {
        err.combine(options_error);
    }
    let err = err.to_compile_error();
    quote!(#input #err)
}

fn first_span(tokens: &TokenStream) -> proc_macro2::Span {
    tokens
        .clone()
        .into_iter()
        .find(|tt| !matches!(tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(proc_macro2::Span::call_site, |tt| tt.span())
}

fn describe(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Union(_) => "a union",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Impl(_) => "an impl block (put the attribute on a method inside it)",
        syn::Item::Mod(_) => "a module",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a `use`",
        syn::Item::Macro(_) => "a macro invocation",
        _ => "this item",
    }
}

/// The generated `par_<name>`.
fn companion(func: &ItemFn, shape: &Shape, options: &Options) -> TokenStream {
    let sig = &func.sig;
    let name = &sig.ident;
    let companion_name = options
        .name
        .clone()
        .unwrap_or_else(|| format_ident!("par_{}", name, span = name.span()));
    let vis = &func.vis;
    let cfgs = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"));
    let (item_arg, pass) = shape.item.as_ref().expect("validated: has an item");
    let is_method = matches!(shape.receiver, Receiver::Shared);

    let ret_ty = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let ret_span = match &sig.output {
        ReturnType::Default => sig.paren_token.span.join(),
        ReturnType::Type(_, ty) => ty.span(),
    };

    // Names the companion uses; `items` unless a context parameter already has that name.
    let items = if shape.context.iter().any(|c| c.ident == "items") {
        format_ident!("__amorsize_items")
    } else {
        format_ident!("items")
    };
    let item_var = format_ident!("__amorsize_item");

    let mut generics = sig.generics.clone();
    let mut bounds: Vec<WherePredicate> = Vec::new();
    // Elided lifetimes in the item's type (`&Wrapper<'_>`, `&&str`) cannot appear in the
    // companion's bounds: they get named lifetime parameters of the companion instead.
    let mut named_lifetimes = Vec::new();
    let named_item = match pass {
        ItemPass::Borrowed { target, .. } => name_elided_lifetimes(target, &mut named_lifetimes),
        ItemPass::Owned(ty) => name_elided_lifetimes(ty, &mut named_lifetimes),
    };
    let (items_param, call_item, mapper) = match pass {
        ItemPass::Borrowed { reference, target } if is_generic_sized(target, &sig.generics) => {
            // `Borrow` would leave a generic `T` uninferable (a `String` borrows as both
            // `String` and `str`): take a slice of exactly `T`.
            let target = &named_item;
            let lifetime = &reference.lifetime;
            let span = item_arg.ty.span();
            if !has_lifetimes(target) {
                bounds.push(syn::parse_quote_spanned! {span=> #target: ::core::marker::Sync });
            }
            (
                quote!(#items: &#lifetime [#target]),
                quote!(#item_var),
                quote!(::amorsize::__private::map_slice),
            )
        }
        ItemPass::Borrowed { reference, .. } => {
            let target = &named_item;
            let lifetime = &reference.lifetime;
            let s = format_ident!("__AmorsizeS");
            generics.params.push(syn::parse_quote!(#s));
            let span = item_arg.ty.span();
            bounds.push(syn::parse_quote_spanned! {span=>
                #s: ::core::borrow::Borrow<#target> + ::core::marker::Sync
            });
            // Checked where the function is defined, so a non-`Sync` item type is reported
            // at the user's parameter even before any call. Not for types with lifetimes: a
            // where-clause would pin every other `Sync` proof about that type (a context
            // parameter of the same type, say) to the same lifetime.
            if !has_lifetimes(target) {
                bounds.push(syn::parse_quote_spanned! {span=> #target: ::core::marker::Sync });
            }
            (
                quote!(#items: &#lifetime [#s]),
                quote!(<#s as ::core::borrow::Borrow<#target>>::borrow(#item_var)),
                quote!(::amorsize::__private::map_slice),
            )
        }
        ItemPass::Owned(_) => {
            let ty = &named_item;
            let i = format_ident!("__AmorsizeI");
            generics.params.push(syn::parse_quote!(#i));
            let span = item_arg.ty.span();
            if !has_lifetimes(ty) {
                bounds.push(syn::parse_quote_spanned! {span=>
                    #ty: ::core::marker::Send
                });
            }
            bounds.push(syn::parse_quote! {
                #i: ::amorsize::__private::IntoItems<#ty>
            });
            (
                quote!(#items: #i),
                quote!(#item_var),
                quote!(::amorsize::__private::map),
            )
        }
    };
    for lifetime in named_lifetimes.into_iter().rev() {
        generics
            .params
            .insert(0, GenericParam::Lifetime(syn::LifetimeParam::new(lifetime)));
    }
    // The remaining bounds only make errors point at the user's code; a type with elided
    // lifetimes cannot be named in them, and the runtime's own bounds still hold it.
    // `impl Trait` cannot appear in a where-clause either.
    let return_unnameable = match &sig.output {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => has_lifetimes(ty) || crate::valid::has_impl_trait(ty),
    };
    if !return_unnameable {
        bounds.push(syn::parse_quote_spanned! {ret_span=>
            #ret_ty: ::core::marker::Send
        });
    }
    if let Receiver::Shared = shape.receiver {
        let span = sig.inputs.first().map_or_else(|| name.span(), |a| a.span());
        bounds.push(syn::parse_quote_spanned! {span=> Self: ::core::marker::Sync });
    }

    let mut context_params = Vec::new();
    let mut context_args = Vec::new();
    for context in &shape.context {
        let ident = &context.ident;
        let ty = &context.arg.ty;
        let span = ty.span();
        context_params.push(quote!(#ident: #ty));
        if context.by_ref {
            let syn::Type::Reference(reference) = &**ty else {
                unreachable!("by_ref contexts are references")
            };
            let target = &reference.elem;
            if !has_lifetimes(target) {
                bounds.push(syn::parse_quote_spanned! {span=> #target: ::core::marker::Sync });
            }
            context_args.push(quote!(#ident));
        } else {
            if !has_lifetimes(ty) {
                bounds.push(syn::parse_quote_spanned! {span=>
                    #ty: ::core::clone::Clone + ::core::marker::Sync
                });
            }
            context_args.push(quote!(::core::clone::Clone::clone(&#ident)));
        }
    }
    generics.make_where_clause().predicates.extend(bounds);
    let (_, _, where_clause) = generics.split_for_impl();
    let params = &generics.params;

    // Type and const parameters, for the call's turbofish and the per-instantiation site key
    // (a `usize` const parameter keys as the type `[(); N]`, another primitive one as
    // `__private::ConstU32<N>` and the like; a const of an aliased type shares one site).
    let mut type_args: Vec<TokenStream> = Vec::new();
    let mut key_types: Vec<TokenStream> = Vec::new();
    for param in &sig.generics.params {
        match param {
            GenericParam::Type(t) => {
                type_args.push(t.ident.to_token_stream());
                key_types.push(t.ident.to_token_stream());
            }
            GenericParam::Const(c) => {
                let ident = &c.ident;
                type_args.push(ident.to_token_stream());
                if let Some(key) = const_key(&c.ty, ident) {
                    key_types.push(key);
                }
            }
            GenericParam::Lifetime(_) => {}
        }
    }
    let turbofish = if type_args.is_empty() {
        quote!()
    } else {
        quote!(::<#(#type_args),*>)
    };
    // An associated function without `self` is recognisable only when its signature
    // mentions `Self`, or when the user says so (`associated`); it is then called through
    // `Self` too.
    let associated = is_method || mentions_self(sig) || options.associated;
    let callee = if associated {
        quote!(Self::#name #turbofish)
    } else {
        quote!(#name #turbofish)
    };
    let (receiver_param, self_arg) = if is_method {
        let receiver = sig.inputs.first();
        (quote!(#receiver,), quote!(self,))
    } else {
        (quote!(), quote!())
    };

    let site_key = if associated {
        Some(quote!((Self, #(#key_types,)*)))
    } else if key_types.is_empty() {
        None
    } else {
        Some(quote!((#(#key_types,)*)))
    };
    let site = match site_key {
        None => quote!(&__AMORSIZE_SITE),
        Some(key) => quote!(__AMORSIZE_SITE.instance(::core::any::type_name::<#key>())),
    };
    let mode = match options.mode.map_or(Mode::Auto, |(m, _)| m) {
        Mode::Auto => quote!(Auto),
        Mode::Serial => quote!(Serial),
        Mode::Parallel => quote!(Parallel),
    };
    let max_threads = match &options.max_threads {
        Some(lit) => {
            let value = lit.base10_parse::<usize>().unwrap_or(0);
            quote!(#value)
        }
        None => quote!(0),
    };
    let name_str = name.to_string();
    let link = if associated {
        format!("Self::{name}")
    } else {
        name_str.clone()
    };
    let doc = format!(
        "Runs [`{name_str}`]({link}) on every item of `{items}` and returns the results in input \
         order, in parallel when amorsize measures that it pays.\n\nGenerated by \
         `#[amorsize::parallel]`; see `amorsize::report()` for what it decided and why."
    );

    let closure_param = match pass {
        ItemPass::Borrowed { target, reference } if is_generic_sized(target, &sig.generics) => {
            let lifetime = &reference.lifetime;
            quote!(#item_var: &#lifetime #named_item)
        }
        ItemPass::Borrowed { reference, .. } => {
            let lifetime = &reference.lifetime;
            quote!(#item_var: &#lifetime __AmorsizeS)
        }
        ItemPass::Owned(_) => quote!(#item_var: #named_item),
    };
    let fn_token = &sig.fn_token;
    let body_span = name.span();
    let body = quote_spanned! {body_span=>
        static __AMORSIZE_SITE: ::amorsize::__private::Site =
            ::amorsize::__private::Site::new(::core::concat!(::core::module_path!(), "::", #name_str))
                .with_mode(::amorsize::__private::Mode::#mode)
                .with_max_threads(#max_threads);
        #mapper(#site, #items, |#closure_param| {
            #callee(#self_arg #call_item, #(#context_args),*)
        })
    };
    quote! {
        #(#cfgs)*
        #[doc = #doc]
        // The added bounds restate the user's own, where clippy would see them twice.
        #[allow(clippy::multiple_bound_locations)]
        #vis #fn_token #companion_name<#params>(
            #receiver_param #items_param, #(#context_params),*
        ) -> ::std::vec::Vec<#ret_ty>
        #where_clause
        {
            #body
        }
    }
}

/// Renames elided lifetimes (`'_`, `&T`) in `ty` to fresh named ones, returned in `named`.
/// Lifetimes inside `fn(&T)` types and `Fn(&T)` sugar are higher-ranked and left alone.
fn name_elided_lifetimes(ty: &syn::Type, named: &mut Vec<syn::Lifetime>) -> syn::Type {
    use syn::visit_mut::VisitMut;
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

/// `true` when the signature's parameter or result types mention `Self`.
fn mentions_self(sig: &syn::Signature) -> bool {
    use syn::visit::Visit;
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if path.segments.first().is_some_and(|s| s.ident == "Self") {
                self.0 = true;
            }
            syn::visit::visit_path(self, path);
        }
    }
    let mut finder = Finder(false);
    for arg in &sig.inputs {
        if let syn::FnArg::Typed(pat_type) = arg {
            finder.visit_type(&pat_type.ty);
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        finder.visit_type(ty);
    }
    finder.0
}

/// `true` when `ty` mentions a lifetime, named or elided (references included).
fn has_lifetimes(ty: &syn::Type) -> bool {
    use syn::visit::Visit;
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

/// `true` when a borrowed item's type names one of the function's type parameters and is
/// not a `str` or slice (which only `Borrow` can reach from owned elements).
fn is_generic_sized(target: &syn::Type, generics: &syn::Generics) -> bool {
    use syn::visit::Visit;
    struct Finder<'a> {
        params: Vec<&'a syn::Ident>,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            if let Some(ident) = path.get_ident() {
                self.found |= self.params.contains(&ident);
            }
            syn::visit::visit_path(self, path);
        }
    }
    if matches!(target, syn::Type::Slice(_)) {
        return false;
    }
    let mut finder = Finder {
        params: generics.type_params().map(|t| &t.ident).collect(),
        found: false,
    };
    finder.visit_type(target);
    finder.found
}

/// A type that names the value of const parameter `ident` of primitive type `ty`, for a
/// site key; `None` for a type the macro cannot recognise (an alias, say).
fn const_key(ty: &syn::Type, ident: &syn::Ident) -> Option<TokenStream> {
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
    Some(quote!(::amorsize::__private::#key<#ident>))
}
