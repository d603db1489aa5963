//! The syntax tree of a metric math expression and the function table.
//!
//! Chains of same-precedence binary operators are kept flat ([`Node::Chain`], [`Node::Pow`]) so that a
//! long expression such as `m1+m2+...+m500` does not become a deep tree: tree depth grows only with
//! explicit nesting, which the parser caps at [`super::MAX_NESTING`].

use super::SearchQuery;

/// A binary operator. Precedence, loosest first: `OR`/`||`; `AND`/`&&`; comparisons; `+ -`; `* /`;
/// unary minus; `^` (right-associative, so `-2^2` is `-4` and `2^3^2` is `2^9`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

/// A function of the metric math function table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Abs,
    AnomalyDetectionBand,
    Avg,
    Ceil,
    DatapointCount,
    DbPerfInsights,
    Diff,
    DiffTime,
    Fill,
    First,
    Last,
    Floor,
    If,
    InsightRuleMetric,
    Lambda,
    Log,
    Log10,
    Max,
    MetricCount,
    Metrics,
    Min,
    Minute,
    Hour,
    Day,
    Date,
    Month,
    Year,
    Epoch,
    Period,
    Rate,
    RemoveEmpty,
    RunningSum,
    Search,
    ServiceQuota,
    Slice,
    Sort,
    Stddev,
    Sum,
    TimeSeries,
}

/// Which arguments of a function may be string literals or bare keywords rather than expressions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgStyle {
    /// Every argument is an expression.
    Exprs,
    /// `METRICS('filter')`: the optional argument is a string.
    Metrics,
    /// `FILL(x, REPEAT | LINEAR | expr)`.
    Fill,
    /// `SORT(array, AVG|MIN|MAX|SUM|STDDEV, ASC|DESC [, limit])`.
    Sort,
    /// `SEARCH('query', 'stat' [, period])`.
    Search,
    /// Not evaluated (unsupported): any argument shape is accepted.
    Any,
}

impl Func {
    /// Every function, for lookups by name.
    pub const ALL: [Func; 39] = [
        Func::Abs,
        Func::AnomalyDetectionBand,
        Func::Avg,
        Func::Ceil,
        Func::DatapointCount,
        Func::DbPerfInsights,
        Func::Diff,
        Func::DiffTime,
        Func::Fill,
        Func::First,
        Func::Last,
        Func::Floor,
        Func::If,
        Func::InsightRuleMetric,
        Func::Lambda,
        Func::Log,
        Func::Log10,
        Func::Max,
        Func::MetricCount,
        Func::Metrics,
        Func::Min,
        Func::Minute,
        Func::Hour,
        Func::Day,
        Func::Date,
        Func::Month,
        Func::Year,
        Func::Epoch,
        Func::Period,
        Func::Rate,
        Func::RemoveEmpty,
        Func::RunningSum,
        Func::Search,
        Func::ServiceQuota,
        Func::Slice,
        Func::Sort,
        Func::Stddev,
        Func::Sum,
        Func::TimeSeries,
    ];

    /// The function's name as written in expressions (always uppercase).
    pub fn name(self) -> &'static str {
        match self {
            Func::Abs => "ABS",
            Func::AnomalyDetectionBand => "ANOMALY_DETECTION_BAND",
            Func::Avg => "AVG",
            Func::Ceil => "CEIL",
            Func::DatapointCount => "DATAPOINT_COUNT",
            Func::DbPerfInsights => "DB_PERF_INSIGHTS",
            Func::Diff => "DIFF",
            Func::DiffTime => "DIFF_TIME",
            Func::Fill => "FILL",
            Func::First => "FIRST",
            Func::Last => "LAST",
            Func::Floor => "FLOOR",
            Func::If => "IF",
            Func::InsightRuleMetric => "INSIGHT_RULE_METRIC",
            Func::Lambda => "LAMBDA",
            Func::Log => "LOG",
            Func::Log10 => "LOG10",
            Func::Max => "MAX",
            Func::MetricCount => "METRIC_COUNT",
            Func::Metrics => "METRICS",
            Func::Min => "MIN",
            Func::Minute => "MINUTE",
            Func::Hour => "HOUR",
            Func::Day => "DAY",
            Func::Date => "DATE",
            Func::Month => "MONTH",
            Func::Year => "YEAR",
            Func::Epoch => "EPOCH",
            Func::Period => "PERIOD",
            Func::Rate => "RATE",
            Func::RemoveEmpty => "REMOVE_EMPTY",
            Func::RunningSum => "RUNNING_SUM",
            Func::Search => "SEARCH",
            Func::ServiceQuota => "SERVICE_QUOTA",
            Func::Slice => "SLICE",
            Func::Sort => "SORT",
            Func::Stddev => "STDDEV",
            Func::Sum => "SUM",
            Func::TimeSeries => "TIME_SERIES",
        }
    }

    /// Look a function up by its (uppercase) name.
    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// Minimum and maximum number of arguments.
    pub(crate) fn arity(self) -> (usize, usize) {
        match self {
            Func::Metrics => (0, 1),
            Func::AnomalyDetectionBand => (1, 2),
            Func::If => (2, 3),
            Func::Fill | Func::InsightRuleMetric => (2, 2),
            Func::Search | Func::Slice => (2, 3),
            Func::Sort => (3, 4),
            Func::DbPerfInsights | Func::Lambda => (1, 16),
            _ => (1, 1),
        }
    }

    pub(crate) fn arg_style(self) -> ArgStyle {
        match self {
            Func::Metrics => ArgStyle::Metrics,
            Func::Fill => ArgStyle::Fill,
            Func::Sort => ArgStyle::Sort,
            Func::Search => ArgStyle::Search,
            f if f.unsupported_reason().is_some() => ArgStyle::Any,
            _ => ArgStyle::Exprs,
        }
    }

    /// Why this implementation cannot evaluate the function, if it cannot.
    pub(crate) fn unsupported_reason(self) -> Option<&'static str> {
        match self {
            Func::DbPerfInsights => Some("Performance Insights metrics are not available"),
            Func::InsightRuleMetric => Some("Contributor Insights rules are not available"),
            Func::Lambda => Some("Lambda-backed data sources are not supported"),
            Func::ServiceQuota => Some("Service Quotas integration is not available"),
            _ => None,
        }
    }
}

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Number(f64),
    /// A string literal; only appears as a direct function argument.
    Str(String),
    /// A bare uppercase keyword (`REPEAT`, `LINEAR`, `ASC`, `DESC`, `AVG` as a SORT criterion ...);
    /// only appears as a direct function argument.
    Keyword {
        name: String,
        pos: usize,
    },
    /// A reference to another query by Id.
    Id {
        name: String,
        pos: usize,
    },
    /// Unary minus.
    Neg(Box<Node>),
    /// A left-associative chain of same-precedence operators: `first op1 x1 op2 x2 ...`.
    Chain {
        first: Box<Node>,
        rest: Vec<(BinOp, Node)>,
    },
    /// A right-associative power chain `x0 ^ x1 ^ ... ^ xn` (at least two operands).
    Pow(Vec<Node>),
    /// `[a, b, ...]`; nested arrays are flattened when evaluated.
    Array(Vec<Node>),
    /// A function call (other than `SEARCH`).
    Call {
        func: Func,
        args: Vec<Node>,
        pos: usize,
    },
    /// `SEARCH('query', 'stat', period)`, its query parsed.
    Search {
        query: SearchQuery,
        stat: String,
        period: Option<Box<Node>>,
        pos: usize,
    },
}

impl Node {
    /// Direct children, for traversals.
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Number(_) | Node::Str(_) | Node::Keyword { .. } | Node::Id { .. } => Vec::new(),
            Node::Neg(inner) => vec![inner.as_ref()],
            Node::Chain { first, rest } => {
                let mut v = vec![first.as_ref()];
                v.extend(rest.iter().map(|(_, n)| n));
                v
            }
            Node::Pow(items) | Node::Array(items) | Node::Call { args: items, .. } => {
                items.iter().collect()
            }
            Node::Search { period, .. } => period.iter().map(|p| p.as_ref()).collect(),
        }
    }

    pub(crate) fn collect_ids(
        &self,
        out: &mut Vec<String>,
        seen: &mut std::collections::HashSet<String>,
    ) {
        if let Node::Id { name, .. } = self {
            if seen.insert(name.clone()) {
                out.push(name.clone());
            }
        }
        for child in self.children() {
            child.collect_ids(out, seen);
        }
    }

    pub(crate) fn any_call(&self, pred: &dyn Fn(Func) -> bool) -> bool {
        let here = match self {
            Node::Call { func, .. } => pred(*func),
            Node::Search { .. } => pred(Func::Search),
            _ => false,
        };
        here || self.children().into_iter().any(|c| c.any_call(pred))
    }

    pub(crate) fn collect_searches<'a>(&'a self, out: &mut Vec<&'a SearchQuery>) {
        if let Node::Search { query, .. } = self {
            out.push(query);
        }
        for child in self.children() {
            child.collect_searches(out);
        }
    }
}
