//! Evaluating one pattern against one event — the reference semantics the compiled matcher must
//! agree with. Fields are reached through objects and through arrays (of objects, or nested arrays);
//! when a pattern object meets an array of objects, all of that object's fields must hold within
//! one element (AWS's array consistency). A leaf matches when any of its scalar values satisfies any
//! of the field's conditions; `exists` looks only at leaf (scalar) values.

use crate::pattern::{Child, Cond, Node};
use crate::value::Scalar;

/// The shape of an event value, as evaluation needs it; implemented for `serde_json::Value` and
/// for the matcher's pruned events.
pub(crate) trait View: Copy {
    fn get(self, key: &str) -> Option<Self>;
    fn is_object(self) -> bool;
    /// If this is an array: whether `f` said true for some element (stopping there).
    fn for_each_element(self, f: &mut dyn FnMut(Self) -> bool) -> Option<bool>;
    /// If this is a scalar: what `f` says of it; false otherwise.
    fn with_scalar(self, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool;
}

impl View for &serde_json::Value {
    fn get(self, key: &str) -> Option<Self> {
        match self {
            serde_json::Value::Object(m) => m.get(key),
            _ => None,
        }
    }
    fn is_object(self) -> bool {
        self.is_object()
    }
    fn for_each_element(self, f: &mut dyn FnMut(Self) -> bool) -> Option<bool> {
        match self {
            serde_json::Value::Array(a) => Some(a.iter().any(f)),
            _ => None,
        }
    }
    fn with_scalar(self, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
        use serde_json::Value as V;
        match self {
            V::String(s) => f(Scalar::Str(s)),
            V::Number(n) => f(Scalar::Num(n.as_f64().unwrap_or(f64::NAN))),
            V::Bool(b) => f(Scalar::Bool(*b)),
            V::Null => f(Scalar::Null),
            _ => false,
        }
    }
}

/// Visit the objects reached through (nested) arrays; stop early when `f` says true.
fn any_object<V: View>(v: V, f: &mut dyn FnMut(V) -> bool, seen_object: &mut bool) -> bool {
    match v.for_each_element(&mut |e| any_object(e, f, seen_object)) {
        Some(r) => r,
        None => {
            if v.is_object() {
                *seen_object = true;
                f(v)
            } else {
                false
            }
        }
    }
}

/// Visit the scalar leaves reached through (nested) arrays; stop early when `f` says true.
fn any_leaf<V: View>(v: V, f: &mut dyn FnMut(Scalar<'_>) -> bool) -> bool {
    match v.for_each_element(&mut |e| any_leaf(e, f)) {
        Some(r) => r,
        None => v.with_scalar(f),
    }
}

/// Does the object-level pattern `node` match the value `v` (None: absent)?
pub(crate) fn node_matches<V: View>(node: &Node, v: Option<V>) -> bool {
    match v {
        Some(v) => {
            let mut seen_object = false;
            if any_object(v, &mut |o| fields_match(node, Some(o)), &mut seen_object) {
                return true;
            }
            // Scalars (or arrays without objects) have no fields: judge the node as absent.
            !seen_object && fields_match::<V>(node, None)
        }
        None => fields_match::<V>(node, None),
    }
}

fn fields_match<V: View>(node: &Node, obj: Option<V>) -> bool {
    for (k, child) in &node.fields {
        let cv = obj.and_then(|o| o.get(k));
        let ok = match child {
            Child::Obj(n) => node_matches(n, cv),
            Child::Leaf(conds) => leaf_matches(conds, cv),
        };
        if !ok {
            return false;
        }
    }
    node.ors
        .iter()
        .all(|group| group.iter().any(|alt| fields_match(alt, obj)))
}

/// Does a field with these conditions match the value `v` (None: absent)?
pub(crate) fn leaf_matches<V: View>(conds: &[Cond], v: Option<V>) -> bool {
    let mut has_leaf = None;
    let mut present = || -> bool {
        *has_leaf.get_or_insert_with(|| v.is_some_and(|v| any_leaf(v, &mut |_| true)))
    };
    for c in conds {
        let hit = match c {
            Cond::Exists(want) => present() == *want,
            _ => match v {
                Some(v) => any_leaf(v, &mut |s| c.test(s)),
                None => false,
            },
        };
        if hit {
            return true;
        }
    }
    false
}
