//! Evaluation of the syntax tree: Id lookups, arrays, unary minus and the binary operators.
//!
//! Combination rules (user guide, "Basic arithmetic functions" and "Comparison and logical operators"):
//!
//! * scalar op scalar is a scalar;
//! * time series op scalar applies to every data point of the series;
//! * time series op time series is computed over the union of their timestamps, a value missing from
//!   one series counting as 0 (for arithmetic and for comparisons alike);
//! * array op scalar / array op series applies to every series of the array, each keeping its label;
//!   array op array is not a documented combination and is an error;
//! * comparisons and logical operators produce 1 (true) or 0 (false); any non-zero value is true;
//! * a data point whose result is undefined (division by zero, overflow) is dropped.

use super::ast::{BinOp, Node};
use super::functions;
use super::series::{from_points, merge_union, normalize};
use super::{MathEnv, MathError, MathValue, Series};

/// Evaluation context.
pub(crate) struct Ctx<'a> {
    pub env: &'a dyn MathEnv,
}

pub(crate) fn eval_root(root: &Node, env: &dyn MathEnv) -> Result<MathValue, MathError> {
    eval_node(root, &Ctx { env })
}

/// Normalise a value coming from the caller so that every series is well formed.
pub(crate) fn normalize_value(v: MathValue) -> MathValue {
    match v {
        MathValue::Scalar(x) => MathValue::Scalar(x),
        MathValue::Series(s) => MathValue::Series(normalize(s)),
        MathValue::Array(items) => MathValue::Array(items.into_iter().map(normalize).collect()),
    }
}

pub(crate) fn eval_node(node: &Node, ctx: &Ctx<'_>) -> Result<MathValue, MathError> {
    match node {
        Node::Number(n) => Ok(MathValue::Scalar(*n)),
        Node::Id { name, .. } => ctx.env.lookup(name).map(normalize_value).ok_or_else(|| {
            MathError::new(format!("The expression references an unknown Id: {name}"))
        }),
        Node::Str(s) => Err(MathError::new(format!("A string ('{s}') is not a value"))),
        Node::Keyword { name, .. } => Err(MathError::new(format!("'{name}' is not a value"))),
        Node::Neg(inner) => Ok(negate(eval_node(inner, ctx)?)),
        Node::Chain { first, rest } => {
            let mut acc = eval_node(first, ctx)?;
            for (op, operand) in rest {
                let rhs = eval_node(operand, ctx)?;
                acc = binary(*op, acc, rhs)?;
            }
            Ok(acc)
        }
        Node::Pow(operands) => {
            let mut values = operands
                .iter()
                .map(|o| eval_node(o, ctx))
                .collect::<Result<Vec<_>, _>>()?;
            let mut acc = values
                .pop()
                .ok_or_else(|| MathError::new("empty power expression"))?;
            while let Some(base) = values.pop() {
                acc = binary(BinOp::Pow, base, acc)?;
            }
            Ok(acc)
        }
        Node::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                match eval_node(item, ctx)? {
                    MathValue::Series(s) => out.push(s),
                    MathValue::Array(more) => out.extend(more),
                    MathValue::Scalar(_) => {
                        return Err(MathError::new(
                            "An array can contain only time series and arrays of time series, not scalar values",
                        ))
                    }
                }
            }
            Ok(MathValue::Array(out))
        }
        Node::Call { func, args, pos } => functions::call(*func, args, *pos, ctx),
        Node::Search {
            query,
            stat,
            period,
            ..
        } => functions::search(query, stat, period.as_deref(), ctx),
    }
}

/// Unary minus.
pub(crate) fn negate(v: MathValue) -> MathValue {
    map_values(v, |x| -x)
}

/// Apply `f` to a scalar, to every point of a series, or to every point of every series of an array.
pub(crate) fn map_values(v: MathValue, f: impl Fn(f64) -> f64) -> MathValue {
    match v {
        MathValue::Scalar(x) => MathValue::Scalar(scalar_result(f(x))),
        MathValue::Series(s) => MathValue::Series(map_series(&s, &f)),
        MathValue::Array(items) => {
            MathValue::Array(items.iter().map(|s| map_series(s, &f)).collect())
        }
    }
}

pub(crate) fn map_series(s: &Series, f: &impl Fn(f64) -> f64) -> Series {
    from_points(
        s.label.clone(),
        s.timestamps
            .iter()
            .copied()
            .zip(s.values.iter().map(|v| f(*v))),
    )
}

/// A scalar result: non-finite means "no value" and is represented as NaN.
pub(crate) fn scalar_result(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        f64::NAN
    }
}

fn truth(x: f64) -> f64 {
    if x != 0.0 {
        1.0
    } else {
        0.0
    }
}

/// The operator applied to two values; NaN ("no value") in, NaN out; non-finite results are later
/// dropped from series.
pub(crate) fn apply(op: BinOp, a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    let cmp = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                f64::NAN
            } else {
                a / b
            }
        }
        BinOp::Pow => a.powf(b),
        BinOp::Eq => cmp(a == b),
        BinOp::Ne => cmp(a != b),
        BinOp::Lt => cmp(a < b),
        BinOp::Le => cmp(a <= b),
        BinOp::Gt => cmp(a > b),
        BinOp::Ge => cmp(a >= b),
        BinOp::And => cmp(truth(a) == 1.0 && truth(b) == 1.0),
        BinOp::Or => cmp(truth(a) == 1.0 || truth(b) == 1.0),
    }
}

fn op_symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Pow => "^",
        BinOp::Eq => "==",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::And => "AND",
        BinOp::Or => "OR",
    }
}

/// Series op series over the union of timestamps (missing = 0); the left operand's label is kept.
pub(crate) fn series_series(op: BinOp, a: &Series, b: &Series) -> Series {
    from_points(a.label.clone(), merge_union(a, b, |x, y| apply(op, x, y)))
}

/// A binary operator applied to two values, by the combination rules in the module docs.
pub(crate) fn binary(op: BinOp, lhs: MathValue, rhs: MathValue) -> Result<MathValue, MathError> {
    use MathValue::{Array, Scalar, Series as Ts};
    Ok(match (lhs, rhs) {
        (Scalar(a), Scalar(b)) => Scalar(scalar_result(apply(op, a, b))),
        (Ts(s), Scalar(b)) => Ts(map_series(&s, &|v| apply(op, v, b))),
        (Scalar(a), Ts(s)) => Ts(map_series(&s, &|v| apply(op, a, v))),
        (Ts(a), Ts(b)) => Ts(series_series(op, &a, &b)),
        (Array(items), Scalar(b)) => Array(
            items
                .iter()
                .map(|s| map_series(s, &|v| apply(op, v, b)))
                .collect(),
        ),
        (Scalar(a), Array(items)) => Array(
            items
                .iter()
                .map(|s| map_series(s, &|v| apply(op, a, v)))
                .collect(),
        ),
        (Array(items), Ts(b)) => Array(items.iter().map(|s| series_series(op, s, &b)).collect()),
        (Ts(a), Array(items)) => Array(
            items
                .iter()
                .map(|s| {
                    let mut out = series_series(op, &a, s);
                    out.label = s.label.clone();
                    out
                })
                .collect(),
        ),
        (Array(_), Array(_)) => {
            return Err(MathError::new(format!(
                "The operator {} cannot combine two arrays of time series",
                op_symbol(op)
            )))
        }
    })
}
