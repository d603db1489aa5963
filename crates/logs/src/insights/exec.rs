//! Running a parsed query over the event store: commands before the first `stats`/`sort`/`limit`/
//! `dedup` stream over every event of the window (no per-event allocation unless a command sets a
//! field); `stats` aggregates into groups; everything after works on materialised rows. A `sort`
//! followed only by `limit`/projections keeps a bounded top-k, and a query without `sort` or
//! `stats` stops scanning once it has enough rows.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::eval::{eval, sort_cmp, Fields, Rec, V};
use super::parser::{field_refs as refs, is_aggregate, Command, Expr, Named, ParseKind};
use crate::storage::columns::Columns;
use crate::storage::LogStore;

/// One log group a query reads.
pub struct Source {
    pub gid: u64,
    pub name: String,
    pub account: String,
    pub streams: HashMap<u32, String>,
}

/// A finished query.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub rows: Vec<Vec<(String, String)>>,
    pub matched: u64,
    pub scanned: u64,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cancelled")]
    Cancelled,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Storage(#[from] crate::storage::StorageError),
}

pub type Row = Vec<(String, V)>;

/// Apply a streaming command to an event; false drops it.
fn apply_stream(cmd: &Command, rec: &mut Rec) -> bool {
    match cmd {
        Command::Fields(list) | Command::Display(list) => {
            for n in list {
                if !matches!(&n.expr, Expr::Field(f) if *f == n.name) {
                    let v = eval(&n.expr, rec);
                    rec.set(&n.name, v);
                }
            }
            true
        }
        Command::Filter(e) => eval(e, rec).truthy(),
        Command::Parse { source, kind } => {
            // Borrow `@message` instead of copying it for every event.
            let owned;
            let text: &str = match source {
                Expr::Field(f) => match rec.get_str(f) {
                    Some(t) => t,
                    None => {
                        owned = rec.get(f).render();
                        &owned
                    }
                },
                other => {
                    owned = eval(other, rec).render();
                    &owned
                }
            };
            let found = parse_captures(kind, text);
            for (k, v) in found {
                rec.set(&k, v);
            }
            true
        }
        _ => true,
    }
}

fn apply_row(cmd: &Command, row: &mut Row) -> bool {
    match cmd {
        Command::Fields(list) | Command::Display(list) => {
            for n in list {
                let v = eval(&n.expr, row);
                row.push((n.name.clone(), v));
            }
            true
        }
        Command::Filter(e) => eval(e, row).truthy(),
        Command::Parse { source, kind } => {
            let text = eval(source, row).render();
            for (k, v) in parse_captures(kind, &text) {
                row.push((k, v));
            }
            true
        }
        _ => true,
    }
}

/// Field values a `parse` extracts from `text` (none when the pattern does not match).
pub fn parse_captures(kind: &ParseKind, text: &str) -> Vec<(String, V)> {
    match kind {
        ParseKind::Regex(re) => match re.captures(text) {
            Some(c) => re
                .capture_names()
                .flatten()
                .filter_map(|n| {
                    c.name(n)
                        .map(|m| (n.to_string(), V::Str(m.as_str().to_string())))
                })
                .collect(),
            None => Vec::new(),
        },
        ParseKind::Glob(parts, names) => {
            let mut out = Vec::new();
            let Some(first) = parts.first() else {
                return out;
            };
            let Some(mut pos) = text.find(first.as_str()).map(|p| p + first.len()) else {
                return out;
            };
            for (i, name) in names.iter().enumerate() {
                let lit = &parts[i + 1];
                let end = if lit.is_empty() {
                    if i + 1 == names.len() {
                        text.len()
                    } else {
                        pos
                    }
                } else {
                    match text[pos..].find(lit.as_str()) {
                        Some(at) => pos + at,
                        None => return Vec::new(),
                    }
                };
                out.push((name.clone(), V::Str(text[pos..end].to_string())));
                pos = end + lit.len();
            }
            out
        }
    }
}

fn command_refs(c: &Command, out: &mut Vec<String>) {
    match c {
        Command::Fields(l) | Command::Display(l) => l.iter().for_each(|n| refs(&n.expr, out)),
        Command::Filter(e) => refs(e, out),
        Command::Sort(keys) => keys.iter().for_each(|(e, _)| refs(e, out)),
        Command::Parse { source, .. } => refs(source, out),
        Command::Dedup(names) => out.extend(names.iter().cloned()),
        Command::Stats { aggs, by } => aggs.iter().chain(by).for_each(|n| refs(&n.expr, out)),
        Command::Limit(_) => {}
    }
}

/// Output columns of a query without `stats`.
fn projection(cmds: &[Command]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for c in cmds {
        match c {
            Command::Fields(l) => {
                for n in l {
                    if !cols.contains(&n.name) {
                        cols.push(n.name.clone());
                    }
                }
            }
            Command::Display(l) => cols = l.iter().map(|n| n.name.clone()).collect(),
            _ => {}
        }
    }
    if cols.is_empty() {
        cols = ["@timestamp", "@message", "@logStream", "@log"]
            .map(String::from)
            .to_vec();
    }
    cols
}

enum Acc {
    Count(u64),
    Distinct(HashSet<String>),
    Sum(f64, bool),
    Avg(f64, u64),
    Min(Option<V>),
    Max(Option<V>),
    Pct(Vec<f64>, f64),
    Std(u64, f64, f64),
    Earliest(i64, V),
    Latest(i64, V),
    SortsFirst(Option<V>),
    SortsLast(Option<V>),
}

fn new_acc(name: &str, args: &[Expr]) -> Acc {
    match name {
        "count" => Acc::Count(0),
        "count_distinct" => Acc::Distinct(HashSet::new()),
        "sum" => Acc::Sum(0.0, false),
        "avg" => Acc::Avg(0.0, 0),
        "min" => Acc::Min(None),
        "max" => Acc::Max(None),
        "median" => Acc::Pct(Vec::new(), 50.0),
        "pct" | "percentile" => {
            let p = match args.get(1) {
                Some(Expr::Num(n)) => *n,
                _ => 50.0,
            };
            Acc::Pct(Vec::new(), p.clamp(0.0, 100.0))
        }
        "stddev" => Acc::Std(0, 0.0, 0.0),
        "earliest" => Acc::Earliest(i64::MAX, V::Null),
        "latest" => Acc::Latest(i64::MIN, V::Null),
        "sortsfirst" => Acc::SortsFirst(None),
        _ => Acc::SortsLast(None),
    }
}

fn feed(acc: &mut Acc, args: &[Expr], r: &dyn Fields, ts: i64) {
    let v = match args.first() {
        None | Some(Expr::Star) => V::Num(1.0),
        Some(e) => eval(e, r),
    };
    if v.is_null() {
        return;
    }
    match acc {
        Acc::Count(n) => *n += 1,
        Acc::Distinct(set) => {
            if set.len() < 100_000 {
                set.insert(v.render());
            }
        }
        Acc::Sum(s, any) => {
            if let Some(x) = v.num() {
                *s += x;
                *any = true;
            }
        }
        Acc::Avg(s, n) => {
            if let Some(x) = v.num() {
                *s += x;
                *n += 1;
            }
        }
        Acc::Min(m) => {
            if m.as_ref().is_none_or(|cur| sort_cmp(&v, cur).is_lt()) {
                *m = Some(v);
            }
        }
        Acc::Max(m) => {
            if m.as_ref().is_none_or(|cur| sort_cmp(&v, cur).is_gt()) {
                *m = Some(v);
            }
        }
        Acc::Pct(values, _) => {
            if let Some(x) = v.num() {
                values.push(x);
            }
        }
        Acc::Std(n, mean, m2) => {
            if let Some(x) = v.num() {
                *n += 1;
                let d = x - *mean;
                *mean += d / *n as f64;
                *m2 += d * (x - *mean);
            }
        }
        Acc::Earliest(t, cur) => {
            if ts < *t {
                *t = ts;
                *cur = v;
            }
        }
        Acc::Latest(t, cur) => {
            if ts >= *t {
                *t = ts;
                *cur = v;
            }
        }
        Acc::SortsFirst(m) => {
            if m.as_ref().is_none_or(|cur| v.render() < cur.render()) {
                *m = Some(v);
            }
        }
        Acc::SortsLast(m) => {
            if m.as_ref().is_none_or(|cur| v.render() > cur.render()) {
                *m = Some(v);
            }
        }
    }
}

fn finish(acc: Acc) -> V {
    match acc {
        Acc::Count(n) => V::Num(n as f64),
        Acc::Distinct(s) => V::Num(s.len() as f64),
        Acc::Sum(s, any) => {
            if any {
                V::Num(s)
            } else {
                V::Null
            }
        }
        Acc::Avg(s, n) => {
            if n > 0 {
                V::Num(s / n as f64)
            } else {
                V::Null
            }
        }
        Acc::Min(m) | Acc::Max(m) | Acc::SortsFirst(m) | Acc::SortsLast(m) => m.unwrap_or(V::Null),
        Acc::Pct(mut values, p) => {
            if values.is_empty() {
                return V::Null;
            }
            values.sort_by(f64::total_cmp);
            let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
            V::Num(values[rank.clamp(1, values.len()) - 1])
        }
        Acc::Std(n, _, m2) => {
            if n > 1 {
                V::Num((m2 / (n - 1) as f64).sqrt())
            } else if n == 1 {
                V::Num(0.0)
            } else {
                V::Null
            }
        }
        Acc::Earliest(_, v) | Acc::Latest(_, v) => v,
    }
}

struct Stats<'q> {
    aggs: &'q [Named],
    by: &'q [Named],
    /// The aggregate calls inside each `aggs` expression, in evaluation order (`sum(b)/1024`
    /// has one, `sum(a)/count(*)` two).
    calls: Vec<Vec<&'q Expr>>,
    /// Keyed by the rendered `by` values, each as `<len>:<text>` (unambiguous, one allocation).
    groups: HashMap<String, (Vec<V>, Vec<Acc>)>,
    /// Reused buffer the group key is rendered into.
    scratch: String,
}

/// The aggregate calls of `e` (not descending into an aggregate's own arguments).
fn aggregate_calls<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Call(name, _) if is_aggregate(name) => out.push(e),
        Expr::Call(_, args) | Expr::List(args) => args.iter().for_each(|a| aggregate_calls(a, out)),
        Expr::Not(a) | Expr::Neg(a) => aggregate_calls(a, out),
        Expr::Bin(_, a, b) | Expr::Like(a, b, _) => {
            aggregate_calls(a, out);
            aggregate_calls(b, out);
        }
        Expr::In(a, items, _) => {
            aggregate_calls(a, out);
            items.iter().for_each(|i| aggregate_calls(i, out));
        }
        _ => {}
    }
}

/// `e` with its aggregate calls replaced, in order, by the finished values in `vals`.
fn substitute(e: &Expr, vals: &mut dyn Iterator<Item = V>) -> Expr {
    let mut sub = |x: &Expr| substitute(x, vals);
    match e {
        Expr::Call(name, _) if is_aggregate(name) => match vals.next().unwrap_or(V::Null) {
            V::Num(n) => Expr::Num(n),
            V::Str(s) => Expr::Str(s),
            V::Time(t) => Expr::Call("frommillis".into(), vec![Expr::Num(t as f64)]),
            V::Null => Expr::List(Vec::new()),
        },
        Expr::Call(name, args) => Expr::Call(name.clone(), args.iter().map(sub).collect()),
        Expr::List(items) => Expr::List(items.iter().map(sub).collect()),
        Expr::Not(a) => Expr::Not(Box::new(sub(a))),
        Expr::Neg(a) => Expr::Neg(Box::new(sub(a))),
        Expr::Bin(op, a, b) => {
            let a = sub(a);
            Expr::Bin(*op, Box::new(a), Box::new(sub(b)))
        }
        Expr::Like(a, b, neg) => {
            let a = sub(a);
            Expr::Like(Box::new(a), Box::new(sub(b)), *neg)
        }
        Expr::In(a, items, neg) => {
            let a = sub(a);
            Expr::In(Box::new(a), items.iter().map(sub).collect(), *neg)
        }
        other => other.clone(),
    }
}

impl<'q> Stats<'q> {
    fn new(aggs: &'q [Named], by: &'q [Named]) -> Self {
        let calls = aggs
            .iter()
            .map(|a| {
                let mut c = Vec::new();
                aggregate_calls(&a.expr, &mut c);
                c
            })
            .collect();
        Stats {
            aggs,
            by,
            calls,
            groups: HashMap::new(),
            scratch: String::new(),
        }
    }

    /// The output columns: the `by` names, then the aggregates'.
    fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for n in self.by.iter().chain(self.aggs) {
            if !cols.contains(&n.name) {
                cols.push(n.name.clone());
            }
        }
        cols
    }

    /// Count `n` more events in the single group of a `by`-less stats of `count`s only.
    fn bump(&mut self, n: u64) {
        let calls = &self.calls;
        let entry = self.groups.entry(String::new()).or_insert_with(|| {
            let accs = calls.iter().flatten().map(|_| Acc::Count(0)).collect();
            (Vec::new(), accs)
        });
        for acc in &mut entry.1 {
            if let Acc::Count(c) = acc {
                *c += n;
            }
        }
    }

    fn feed(&mut self, r: &dyn Fields, ts: i64) {
        let keys: Vec<V> = self.by.iter().map(|n| eval(&n.expr, r)).collect();
        self.scratch.clear();
        for k in &keys {
            // Values group by their rendering (as before); a time by its milliseconds, which
            // is the same partition without formatting a date per event.
            match k {
                V::Time(ms) => {
                    let _ = write!(self.scratch, "t{ms};");
                }
                V::Str(text) => {
                    let _ = write!(self.scratch, "s{}:", text.len());
                    self.scratch.push_str(text);
                }
                other => {
                    let text = other.render();
                    let _ = write!(self.scratch, "s{}:", text.len());
                    self.scratch.push_str(&text);
                }
            }
        }
        if !self.groups.contains_key(self.scratch.as_str()) {
            let accs = self
                .calls
                .iter()
                .flatten()
                .map(|c| match c {
                    Expr::Call(n, args) => new_acc(n, args),
                    _ => Acc::Count(0),
                })
                .collect();
            self.groups.insert(self.scratch.clone(), (keys, accs));
        }
        let calls = &self.calls;
        let Some(entry) = self.groups.get_mut(self.scratch.as_str()) else {
            return;
        };
        for (acc, c) in entry.1.iter_mut().zip(calls.iter().flatten()) {
            if let Expr::Call(_, args) = c {
                feed(acc, args, r, ts);
            }
        }
    }

    fn rows(self) -> Vec<Row> {
        let mut groups: Vec<(Vec<V>, Vec<Acc>)> = self.groups.into_values().collect();
        groups.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| sort_cmp(x, y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        groups
            .into_iter()
            .map(|(keys, accs)| {
                // A `bin()` group carries its bin start as a hidden `@timestamp`, so a second
                // `stats` can bin again and `earliest`/`latest` order by it.
                let bin_ts = self
                    .by
                    .iter()
                    .zip(&keys)
                    .find(|(n, _)| matches!(&n.expr, Expr::Call(f, _) if f == "bin"))
                    .map(|(_, v)| v.clone());
                let mut row: Row = Vec::with_capacity(keys.len() + self.aggs.len() + 1);
                if let Some(t) = bin_ts {
                    row.push(("@timestamp".to_string(), t));
                }
                row.extend(self.by.iter().map(|n| n.name.clone()).zip(keys));
                let mut finished = accs.into_iter().map(finish);
                for (a, calls) in self.aggs.iter().zip(&self.calls) {
                    let v = match &a.expr {
                        Expr::Call(n, _) if is_aggregate(n) => finished.next().unwrap_or(V::Null),
                        e => {
                            let mut vals = finished.by_ref().take(calls.len());
                            let plain = substitute(e, &mut vals);
                            eval(&plain, &row)
                        }
                    };
                    row.push((a.name.clone(), v));
                }
                row
            })
            .collect()
    }
}

/// A sort key's value; `sort count` finds the `count(*)` column when no `count` field exists.
fn sort_value(e: &Expr, row: &Row) -> V {
    if let Expr::Field(f) = e {
        if !row.iter().any(|(k, _)| k == f) {
            let prefix = format!("{f}(");
            let mut hits = row.iter().filter(|(k, _)| k.starts_with(&prefix));
            if let (Some((_, v)), None) = (hits.next(), hits.next()) {
                return v.clone();
            }
        }
    }
    eval(e, row)
}

fn sort_rows(rows: &mut [Row], keys: &[(Expr, bool)]) {
    rows.sort_by(|a, b| {
        for (e, desc) in keys {
            let (x, y) = (sort_value(e, a), sort_value(e, b));
            let o = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if *desc => sort_cmp(&y, &x),
                _ => sort_cmp(&x, &y),
            };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

/// The per-event half of a query and the row work after it: commands before the first
/// `stats`/`sort`/`limit`/`dedup` run on each event ([`Pipeline::push`]); [`Pipeline::finish`]
/// runs the rest (a second `stats` aggregates the rows of the first).
pub struct Pipeline<'q> {
    pre: &'q [Command],
    post: &'q [Command],
    stats: Option<Stats<'q>>,
    cols: Vec<String>,
    needed: Vec<String>,
    cap: usize,
    limit: usize,
    top_k: bool,
    early_stop: bool,
    /// The first `stats` is only `count(*)`/`count()` with no `by`.
    count_only: bool,
    /// Index of a streaming command a block-wide literal search already decided (skipped).
    implied: Option<usize>,
    rows: Vec<Row>,
    /// Events that passed every streaming command.
    pub matched: u64,
}

impl<'q> Pipeline<'q> {
    pub fn new(cmds: &'q [Command], limit: usize) -> Self {
        let split = cmds
            .iter()
            .position(|c| {
                matches!(
                    c,
                    Command::Stats { .. }
                        | Command::Sort(_)
                        | Command::Limit(_)
                        | Command::Dedup(_)
                )
            })
            .unwrap_or(cmds.len());
        let (pre, rest) = cmds.split_at(split);
        let (stats, post) = match rest.first() {
            Some(Command::Stats { aggs, by }) => (Some(Stats::new(aggs, by)), &rest[1..]),
            _ => (None, rest),
        };
        let cols = projection(cmds);
        let mut needed: Vec<String> = cols.clone();
        post.iter().for_each(|c| command_refs(c, &mut needed));
        needed.push("@ptr".into());
        needed.dedup();
        let cap = post
            .iter()
            .find_map(|c| {
                if let Command::Limit(n) = c {
                    Some(*n)
                } else {
                    None
                }
            })
            .unwrap_or(limit)
            .min(limit);
        let top_k = matches!(post.first(), Some(Command::Sort(_)))
            && post[1..].iter().all(|c| {
                matches!(
                    c,
                    Command::Limit(_) | Command::Fields(_) | Command::Display(_)
                )
            });
        let early_stop = stats.is_none() && post.iter().all(|c| matches!(c, Command::Limit(_)));
        let count_only = stats.as_ref().is_some_and(|s| {
            s.by.is_empty()
                && s.aggs.iter().all(|a| {
                    matches!(&a.expr, Expr::Call(n, args) if n == "count"
                        && matches!(args.as_slice(), [] | [Expr::Star]))
                })
        });
        Pipeline {
            pre,
            post,
            stats,
            cols,
            needed,
            cap,
            limit,
            top_k,
            early_stop,
            count_only,
            implied: None,
            rows: Vec::new(),
            matched: 0,
        }
    }

    /// The commands every event goes through.
    pub fn streaming(&self) -> &'q [Command] {
        self.pre
    }

    /// Note that the events pushed from now on all contain `literal` in `@message`. When the
    /// streaming part is just `@message like <that literal>` (plus plain `fields`), the filter
    /// is skipped; returns whether [`Pipeline::add_matches`] may then count events without
    /// looking at them.
    pub fn prefiltered(&mut self, literal: &str) -> bool {
        let mut filter = None;
        for (i, c) in self.pre.iter().enumerate() {
            match c {
                Command::Filter(e) if filter.is_none() && literal_filter(e) == Some(literal) => {
                    filter = Some(i)
                }
                Command::Fields(l) | Command::Display(l)
                    if l.iter()
                        .all(|n| matches!(&n.expr, Expr::Field(f) if *f == n.name)) => {}
                _ => return false,
            }
        }
        self.implied = filter;
        filter.is_some() && self.count_only
    }

    /// Count `n` events that pass every streaming command, when [`Pipeline::prefiltered`] allowed.
    pub fn add_matches(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.matched += n;
        if let Some(s) = self.stats.as_mut() {
            s.bump(n);
        }
    }

    /// Feed one event; false when the query needs no further events.
    #[inline]
    pub fn push(&mut self, rec: &mut Rec) -> bool {
        let implied = self.implied;
        if !self
            .pre
            .iter()
            .enumerate()
            .all(|(i, c)| Some(i) == implied || apply_stream(c, rec))
        {
            return true;
        }
        self.matched += 1;
        if let Some(s) = self.stats.as_mut() {
            s.feed(rec, rec.ts);
            return true;
        }
        let row: Row = self
            .needed
            .iter()
            .map(|n| (n.clone(), rec.get(n)))
            .filter(|(_, v)| !v.is_null())
            .collect();
        self.rows.push(row);
        if self.early_stop && self.rows.len() >= self.cap {
            return false;
        }
        if self.top_k && self.rows.len() >= 2 * self.cap + 4096 {
            if let Some(Command::Sort(keys)) = self.post.first() {
                sort_rows(&mut self.rows, keys);
                self.rows.truncate(self.cap);
            }
        }
        true
    }

    /// Run the commands after the streaming part and render the rows.
    pub fn finish(self) -> Vec<Vec<(String, String)>> {
        let mut final_cols: Option<Vec<String>> = self.stats.as_ref().map(Stats::columns);
        let mut rows = match self.stats {
            Some(s) => s.rows(),
            None => self.rows,
        };
        for c in self.post {
            match c {
                Command::Stats { aggs, by } => {
                    let mut s = Stats::new(aggs, by);
                    for r in &rows {
                        let ts = match Fields::get(r, "@timestamp") {
                            V::Time(t) => t,
                            other => other.num().map_or(0, |n| n as i64),
                        };
                        s.feed(r, ts);
                    }
                    final_cols = Some(s.columns());
                    rows = s.rows();
                }
                Command::Sort(keys) => sort_rows(&mut rows, keys),
                Command::Limit(n) => rows.truncate(*n),
                Command::Dedup(names) => {
                    let mut seen = HashSet::new();
                    rows.retain(|r| {
                        let key: Vec<V> = names.iter().map(|n| Fields::get(r, n)).collect();
                        // A result with a null dedup field is kept, never a duplicate.
                        key.iter().any(V::is_null)
                            || seen.insert(key.iter().map(V::render).collect::<Vec<_>>())
                    });
                }
                Command::Display(l) => {
                    rows.iter_mut().for_each(|r| {
                        apply_row(c, r);
                    });
                    final_cols = Some(l.iter().map(|n| n.name.clone()).collect());
                }
                other => {
                    rows.retain_mut(|r| apply_row(other, r));
                    if let Some(cols) = final_cols.as_mut() {
                        for name in defined_names(other) {
                            if !cols.contains(&name) {
                                cols.push(name);
                            }
                        }
                    }
                }
            }
        }
        rows.truncate(self.limit);
        let keep: Vec<String> = match final_cols {
            Some(c) => c,
            None => self
                .cols
                .iter()
                .cloned()
                .chain(std::iter::once("@ptr".to_string()))
                .collect(),
        };
        rows.into_iter().map(|r| render_row(r, &keep)).collect()
    }
}

/// Names a row command adds to a row.
fn defined_names(c: &Command) -> Vec<String> {
    match c {
        Command::Fields(l) | Command::Display(l) => l.iter().map(|n| n.name.clone()).collect(),
        Command::Parse {
            kind: ParseKind::Glob(_, names),
            ..
        } => names.clone(),
        Command::Parse {
            kind: ParseKind::Regex(re),
            ..
        } => re.capture_names().flatten().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Run `cmds` over in-memory events `(timestamp ms, message)` of stream `s` in group `g`
/// (account `123456789012`): the whole pipeline without the store, for fuzzing and tests.
pub fn run_events(cmds: &[Command], events: &[(i64, &str)], limit: usize) -> Outcome {
    let mut p = Pipeline::new(cmds, limit);
    let mut out = Outcome::default();
    for (seq, (ts, msg)) in events.iter().enumerate() {
        out.scanned += 1;
        out.bytes += msg.len() as u64;
        let mut rec = Rec::new(*ts, *ts, seq as u64, msg, "s", "g", "123456789012");
        if !p.push(&mut rec) {
            break;
        }
    }
    out.matched = p.matched;
    out.rows = p.finish();
    out
}

/// Run `cmds` over `sources` for events in `[start, end)` ms, returning at most `limit` rows.
#[allow(clippy::too_many_arguments)]
pub fn run(
    store: &LogStore,
    sources: &[Source],
    cmds: &[Command],
    start: i64,
    end: i64,
    limit: usize,
    cancel: &AtomicBool,
    deadline: Instant,
) -> Result<Outcome, ExecError> {
    let mut pipeline = Pipeline::new(cmds, limit);
    let literal = required_literal(pipeline.streaming());
    let finder = literal.as_deref().map(memchr::memmem::Finder::new);
    // only events holding the literal are evaluated: granules that cannot hold it stay undecoded
    let probe = literal
        .as_deref()
        .map(|l| crate::storage::granules::Probe::new(l.as_bytes()));
    // `filter @message like /ERROR/ | stats count()`: the block search decides every event.
    let count_hits = literal.as_deref().is_some_and(|l| pipeline.prefiltered(l));
    if let (true, Some(f)) = (count_hits, &finder) {
        return super::count::run(store, sources, pipeline, f, start, end, cancel, deadline);
    }
    let mut hits: Vec<usize> = Vec::new();
    let mut out = Outcome::default();
    let (mut buf, mut raw) = (Columns::default(), Vec::new());
    'sources: for src in sources {
        for part in store.snapshot(src.gid, start, end) {
            let mut stop = false;
            let mut err = None;
            part.scan_probed(start, end, probe.as_ref(), &mut buf, &mut raw, &mut |b| {
                if cancel.load(Ordering::Relaxed) {
                    err = Some(ExecError::Cancelled);
                    return false;
                }
                if Instant::now() > deadline {
                    err = Some(ExecError::Timeout);
                    return false;
                }
                if let Some(f) = &finder {
                    // Events of one stream come in runs: look each run's stream up once.
                    let mut last: Option<(u32, bool)> = None;
                    for i in 0..b.len() {
                        let id = b.stream[i];
                        let known = match last {
                            Some((l, k)) if l == id => k,
                            _ => {
                                let k = src.streams.contains_key(&id);
                                last = Some((id, k));
                                k
                            }
                        };
                        if known && b.ts[i] >= start && b.ts[i] < end {
                            out.scanned += 1;
                            out.bytes += (b.ends[i] as usize - b.start(i)) as u64;
                        }
                    }
                    b.containing(f, &mut hits);
                }
                let all = 0..b.len();
                let indexes: &mut dyn Iterator<Item = usize> = match &finder {
                    Some(_) => &mut hits.iter().copied(),
                    None => &mut all.into_iter(),
                };
                let mut last: Option<(u32, Option<&String>)> = None;
                for i in indexes {
                    let ts = b.ts[i];
                    if ts < start || ts >= end {
                        continue;
                    }
                    let id = b.stream[i];
                    let found = match last {
                        Some((l, s)) if l == id => s,
                        _ => {
                            let s = src.streams.get(&id);
                            last = Some((id, s));
                            s
                        }
                    };
                    let Some(stream) = found else {
                        continue;
                    };
                    let bytes = b.message(i);
                    if finder.is_none() {
                        out.scanned += 1;
                        out.bytes += bytes.len() as u64;
                    }
                    let lossy;
                    let msg = match std::str::from_utf8(bytes) {
                        Ok(s) => s,
                        Err(_) => {
                            lossy = String::from_utf8_lossy(bytes).into_owned();
                            lossy.as_str()
                        }
                    };
                    let mut rec = Rec::new(
                        ts,
                        b.ingest[i],
                        b.seq[i],
                        msg,
                        stream,
                        &src.name,
                        &src.account,
                    );
                    if !pipeline.push(&mut rec) {
                        stop = true;
                        return false;
                    }
                }
                true
            })?;
            if let Some(e) = err {
                return Err(e);
            }
            if stop {
                break 'sources;
            }
        }
    }
    out.matched = pipeline.matched;
    out.rows = pipeline.finish();
    Ok(out)
}

/// A literal every matching `@message` must contain, taken from the `filter` commands that run
/// before anything could redefine `@message`; lets a scan search whole blocks at once.
pub fn required_literal(pre: &[Command]) -> Option<String> {
    for c in pre {
        match c {
            Command::Filter(e) => {
                if let Some(l) = expr_literal(e) {
                    return Some(l);
                }
            }
            Command::Fields(l) | Command::Display(l)
                if l.iter().any(|n| {
                    n.name == "@message" && !matches!(&n.expr, Expr::Field(f) if f == "@message")
                }) =>
            {
                return None;
            }
            Command::Parse {
                kind: ParseKind::Glob(_, names),
                ..
            } if names.iter().any(|n| n == "@message") => return None,
            Command::Parse {
                kind: ParseKind::Regex(re),
                ..
            } if re.capture_names().flatten().any(|n| n == "@message") => return None,
            _ => {}
        }
    }
    None
}

fn expr_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Bin(super::parser::BinOp::And, a, b) => expr_literal(a).or_else(|| expr_literal(b)),
        other => literal_filter(other).map(str::to_string),
    }
}

/// The literal of a filter that is exactly "`@message` contains this text": `like 'text'` or
/// `like /text/` with no regex syntax in it.
fn literal_filter(e: &Expr) -> Option<&str> {
    match e {
        Expr::Like(a, pat, false) if matches!(&**a, Expr::Field(f) if f == "@message") => {
            match &**pat {
                Expr::Str(s) if !s.is_empty() => Some(s.as_str()),
                Expr::Regex(re) => {
                    let src = re.as_str();
                    let plain = !src.is_empty()
                        && !src
                            .chars()
                            .any(|c| "\\.+*?()|[]{}^$#".contains(c) || c.is_whitespace());
                    plain.then_some(src)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The `{field, value}` pairs of a row: the wanted columns in order (last value of each name),
/// nulls left out.
fn render_row(row: Row, keep: &[String]) -> Vec<(String, String)> {
    keep.iter()
        .filter_map(|n| {
            let v = Fields::get(&row, n);
            (!v.is_null()).then(|| (n.clone(), v.render()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::parser::parse;
    use crate::storage::StoreOptions;

    async fn store_with(events: &[(i64, &str)]) -> (tempfile::TempDir, LogStore, Vec<Source>) {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), StoreOptions::default(), &|_| true).unwrap();
        let mut c = Columns::default();
        for (ts, m) in events {
            c.push(*ts, *ts + 5, 0, 1, m.as_bytes());
        }
        store.append(1, c).await.unwrap();
        let sources = vec![Source {
            gid: 1,
            name: "g".into(),
            account: "123456789012".into(),
            streams: HashMap::from([(1, "s".to_string())]),
        }];
        (dir, store, sources)
    }

    fn run_q(store: &LogStore, sources: &[Source], q: &str) -> Result<Outcome, ExecError> {
        let cmds = parse(q).unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        run(
            store,
            sources,
            &cmds,
            0,
            i64::MAX,
            10_000,
            &AtomicBool::new(false),
            deadline,
        )
    }

    #[tokio::test]
    async fn aggregate_functions() {
        let events: Vec<(i64, String)> = [
            ("a", 2.0),
            ("b", 4.0),
            ("a", 4.0),
            ("c", 4.0),
            ("a", 5.0),
            ("b", 5.0),
            ("d", 7.0),
            ("a", 9.0),
        ]
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (1000 + i as i64, format!(r#"{{"k":"{k}","v":{v}}}"#)))
        .collect();
        let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        let (_dir, store, sources) = store_with(&refs).await;
        let q = "stats count(*) as n, count_distinct(k) as kinds, stddev(v) as sd, earliest(k) as first, latest(k) as last, sortsFirst(k) as lo, sortsLast(k) as hi, sum(v) as total, median(v) as med";
        let out = run_q(&store, &sources, q).unwrap();
        let row: HashMap<String, String> = out.rows[0].iter().cloned().collect();
        assert_eq!(row["n"], "8");
        assert_eq!(row["kinds"], "4");
        // sample standard deviation of 2,4,4,4,5,5,7,9 is sqrt(32/7)
        let sd: f64 = row["sd"].parse().unwrap();
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-9, "{sd}");
        assert_eq!(row["first"], "a");
        assert_eq!(row["last"], "a");
        assert_eq!(row["lo"], "a");
        assert_eq!(row["hi"], "d");
        assert_eq!(row["total"], "40");
        assert_eq!(row["med"], "4");
        let out = run_q(
            &store,
            &sources,
            "stats max(v) as m by k | filter m > 4 | sort m desc",
        )
        .unwrap();
        let got: Vec<(String, String)> = out
            .rows
            .iter()
            .map(|r| (r[0].1.clone(), r[1].1.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), "9".into()),
                ("d".into(), "7".into()),
                ("b".into(), "5".into())
            ]
        );
        let out = run_q(
            &store,
            &sources,
            "fields @timestamp, @ingestionTime, @logStream, @log | limit 1",
        )
        .unwrap();
        let row: HashMap<String, String> = out.rows[0].iter().cloned().collect();
        assert_eq!(row["@ingestionTime"], "1970-01-01 00:00:01.005");
        assert_eq!(row["@logStream"], "s");
        assert_eq!(row["@log"], "123456789012:g");
    }

    #[tokio::test]
    async fn glob_parse_and_literal_prefilter() {
        let (_dir, store, sources) = store_with(&[
            (1, "GET /a 200 12ms"),
            (2, "GET /b 500 40ms ERROR"),
            (3, "POST /c 500 7ms"),
        ])
        .await;
        let out = run_q(&store, &sources, "parse @message '* * * *ms' as method, path, status, ms | filter status = 500 | stats sum(ms) as t by method | sort method").unwrap();
        let got: Vec<Vec<(String, String)>> = out.rows;
        assert_eq!(
            got[0],
            vec![
                ("method".to_string(), "GET".to_string()),
                ("t".to_string(), "40".to_string())
            ]
        );
        assert_eq!(got[1][1].1, "7");
        let cmds = parse("filter @message like /ERROR/ and @message like 'GET'").unwrap();
        assert_eq!(required_literal(&cmds), Some("ERROR".to_string()));
        assert_eq!(
            required_literal(&parse("filter @message like /ERR(OR)?/").unwrap()),
            None
        );
        assert_eq!(
            required_literal(&parse("filter @message not like 'x'").unwrap()),
            None
        );
        let out = run_q(&store, &sources, "filter @message like /ERROR/").unwrap();
        assert_eq!(out.rows.len(), 1);
        assert_eq!(
            (out.scanned, out.matched),
            (3, 1),
            "prefiltered scans still count every record"
        );
    }

    fn grid(out: &Outcome) -> Vec<Vec<(String, String)>> {
        out.rows.clone()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn second_stats_aggregates_the_first() {
        // Three hosts; host a logs 3 events, b 2, c 1, spread over 5-minute bins of two hours.
        let base = 1_795_287_600_000i64; // 2026-11-21 19:00:00 UTC
        let events: Vec<(i64, String)> = [
            (0, "a"),
            (1, "a"),
            (6, "b"),
            (61, "a"),
            (62, "b"),
            (70, "c"),
        ]
        .iter()
        .map(|(min, h)| (base + min * 60_000, format!(r#"{{"host":"{h}"}}"#)))
        .collect();
        let ev: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        let run = |q: &str| run_events(&parse(q).unwrap(), &ev, 10_000);

        let out = run(
            "stats count(*) as n by host | stats avg(n) as mean, max(n) as most, count(*) as hosts",
        );
        assert_eq!(
            grid(&out),
            vec![pairs(&[("mean", "2"), ("most", "3"), ("hosts", "3")])]
        );
        assert_eq!(out.matched, 6);

        // Per-5-minute counts, then the busiest bin per hour: 19:00 has bins 19:00 (2) and
        // 19:05 (1); 20:00 has 20:00 (2) and 20:10 (1).
        let out = run(
            "stats count(*) as n by bin(5m) | stats max(n) as peak, sum(n) as total, count(*) as bins by bin(1h) | sort total desc",
        );
        assert_eq!(
            grid(&out),
            vec![
                pairs(&[
                    ("bin(1h)", "2026-11-21 19:00:00.000"),
                    ("peak", "2"),
                    ("total", "3"),
                    ("bins", "2")
                ]),
                pairs(&[
                    ("bin(1h)", "2026-11-21 20:00:00.000"),
                    ("peak", "2"),
                    ("total", "3"),
                    ("bins", "2")
                ]),
            ]
        );

        // earliest/latest in the second stats order by the first stats' bins.
        let out = run("stats count(*) as n by bin(1h), host | stats earliest(host) as first, latest(host) as last, sum(n) as all");
        assert_eq!(
            grid(&out),
            vec![pairs(&[("first", "a"), ("last", "c"), ("all", "6")])]
        );

        // Commands between the two stats work on the first stats' rows.
        let out = run("stats count(*) as n by host | filter n > 1 | fields n * 10 as tens | stats sum(tens) as s");
        assert_eq!(grid(&out), vec![pairs(&[("s", "50")])]);

        // The AWS documentation's example shape: sizes per 5 minutes, then peak and minimum.
        let out = run("fields strlen(@message) as len | stats sum(len) as b by bin(5m) | stats max(b) as peak, min(b) as low");
        assert_eq!(grid(&out), vec![pairs(&[("peak", "24"), ("low", "12")])]);
        // ... and verbatim, upper-case keywords and arithmetic over an aggregate included.
        let out = run("FIELDS strlen(@message) AS message_length\n| STATS sum(message_length)/1024/1024 as logs_mb BY bin(5m)\n| STATS max(logs_mb) AS peak_ingest_mb, min(logs_mb) AS min_ingest_mb");
        let row: HashMap<String, String> = out.rows[0].iter().cloned().collect();
        let mb = |k: &str| row[k].parse::<f64>().unwrap() * 1024.0 * 1024.0;
        assert!((mb("peak_ingest_mb") - 24.0).abs() < 1e-9, "{row:?}");
        assert!((mb("min_ingest_mb") - 12.0).abs() < 1e-9, "{row:?}");
    }

    #[test]
    fn arithmetic_over_aggregates() {
        let ev: Vec<(i64, String)> = (0..10)
            .map(|i| (i * 1000, format!(r#"{{"k":"{}","v":{}}}"#, i % 2, i * 512)))
            .collect();
        let ev: Vec<(i64, &str)> = ev.iter().map(|(t, m)| (*t, m.as_str())).collect();
        let out = run_events(
            &parse("stats sum(v)/1024 as kb, sum(v)/count(*) as mean, max(v) - min(v) as spread, count(*) * 2 + 1 as odd by k | sort k").unwrap(),
            &ev,
            100,
        );
        // k=0: v = 0, 1024, 2048, 3072, 4096; k=1: 512, 1536, 2560, 3584, 4608
        assert_eq!(
            out.rows,
            vec![
                pairs(&[
                    ("k", "0"),
                    ("kb", "10"),
                    ("mean", "2048"),
                    ("spread", "4096"),
                    ("odd", "11")
                ]),
                pairs(&[
                    ("k", "1"),
                    ("kb", "12.5"),
                    ("mean", "2560"),
                    ("spread", "4096"),
                    ("odd", "11")
                ]),
            ]
        );
        let out = run_events(
            &parse("stats latest(@timestamp) - earliest(@timestamp) as span_ms, toupper(sortsLast(k)) as top").unwrap(),
            &ev,
            100,
        );
        assert_eq!(out.rows, vec![pairs(&[("span_ms", "9000"), ("top", "1")])]);
    }

    #[test]
    fn dedup_keeps_first_and_null_rows() {
        let ev = [
            (3, r#"{"k":"x","n":1}"#),
            (2, r#"{"k":"x","n":2}"#),
            (1, r#"{"n":3}"#),
            (0, r#"{"n":4}"#),
        ];
        let out = run_events(
            &parse("fields k, n | sort n asc | dedup k | display n").unwrap(),
            &ev,
            100,
        );
        let ns: Vec<&str> = out.rows.iter().map(|r| r[0].1.as_str()).collect();
        assert_eq!(ns, ["1", "3", "4"]);
    }

    #[tokio::test]
    async fn literal_count_fast_path_agrees_with_evaluation() {
        let events: Vec<(i64, String)> = (0..500)
            .map(|i| {
                let m = match i % 7 {
                    0 => format!("ERROR disk {i}"),
                    1 => format!("warn ERRO{i}R split"),
                    2 => format!("{i} trailing ERROR"),
                    _ => format!("ok {i}"),
                };
                (1000 + i, m)
            })
            .collect();
        let refs: Vec<(i64, &str)> = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
        let (_dir, store, sources) = store_with(&refs).await;
        let want = events.iter().filter(|(_, m)| m.contains("ERROR")).count();
        for q in [
            "filter @message like /ERROR/ | stats count()",
            "fields @message | filter @message like 'ERROR' | stats count(*) as n",
            "filter @message like /ERR(O)R/ | stats count()",
            "filter @message like /ERROR/ and strlen(@message) > 0 | stats count()",
        ] {
            let out = run_q(&store, &sources, q).unwrap();
            assert_eq!(out.rows[0][0].1, want.to_string(), "{q}");
            assert_eq!(out.matched, want as u64, "{q}");
            assert_eq!(out.scanned, 500, "{q}");
        }
        // A window that cuts the events, and a stream the query does not read.
        let cmds = parse("filter @message like /ERROR/ | stats count()").unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let out = run(
            &store,
            &sources,
            &cmds,
            1100,
            1200,
            10,
            &AtomicBool::new(false),
            deadline,
        )
        .unwrap();
        let want = events
            .iter()
            .filter(|(t, m)| (1100..1200).contains(t) && m.contains("ERROR"))
            .count();
        assert_eq!(out.rows[0][0].1, want.to_string());
        let elsewhere = vec![Source {
            gid: 1,
            name: "g".into(),
            account: "123456789012".into(),
            streams: HashMap::from([(2, "other".to_string())]),
        }];
        let out = run(
            &store,
            &elsewhere,
            &cmds,
            0,
            i64::MAX,
            10,
            &AtomicBool::new(false),
            deadline,
        )
        .unwrap();
        assert!(
            out.rows.is_empty(),
            "no events, no count row: {:?}",
            out.rows
        );
        assert_eq!(out.matched, 0);
    }

    #[tokio::test]
    async fn cancel_and_timeout() {
        let (_dir, store, sources) = store_with(&[(1, "x")]).await;
        let cmds = parse("fields @message").unwrap();
        let far = Instant::now() + std::time::Duration::from_secs(60);
        let cancelled = run(
            &store,
            &sources,
            &cmds,
            0,
            i64::MAX,
            10,
            &AtomicBool::new(true),
            far,
        );
        assert!(matches!(cancelled, Err(ExecError::Cancelled)));
        let past = Instant::now() - std::time::Duration::from_millis(1);
        let timed_out = run(
            &store,
            &sources,
            &cmds,
            0,
            i64::MAX,
            10,
            &AtomicBool::new(false),
            past,
        );
        assert!(matches!(timed_out, Err(ExecError::Timeout)));
    }
}
