//! Values, records and expression evaluation for Logs Insights: system fields (`@timestamp`,
//! `@message`, `@logStream`, `@log`, `@ingestionTime`, `@ptr`), fields discovered in JSON events
//! (nested names joined with dots) and Lambda `START`/`END`/`REPORT` lines, and the documented
//! scalar functions (string, numeric, datetime, IP, general). Values print as CloudWatch prints them.

use std::cell::OnceCell;
use std::net::IpAddr;

use base64::Engine as _;
use memchr::memmem;
use serde_json::Value as Json;

use super::parser::{BinOp, Expr};

/// A value of the query language. Booleans are 1 / 0.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Num(f64),
    Str(String),
    /// Milliseconds since the epoch.
    Time(i64),
}

impl V {
    pub fn num(&self) -> Option<f64> {
        match self {
            V::Num(n) => Some(*n),
            V::Time(t) => Some(*t as f64),
            V::Str(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            V::Null => None,
        }
    }

    pub fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Num(n) => *n != 0.0,
            V::Str(s) => !s.is_empty(),
            V::Time(_) => true,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, V::Null)
    }

    /// The text CloudWatch shows for this value.
    pub fn render(&self) -> String {
        match self {
            V::Null => String::new(),
            V::Str(s) => s.clone(),
            V::Num(n) => format_num(*n),
            V::Time(ms) => format_time(*ms),
        }
    }
}

fn bool_v(b: bool) -> V {
    V::Num(if b { 1.0 } else { 0.0 })
}

pub fn format_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// `2026-11-21 19:00:00.000` (UTC).
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            millis
        ),
        Err(_) => ms.to_string(),
    }
}

/// Where an event lives, encoded into `@ptr`.
pub fn encode_ptr(group: &str, ts: i64, seq: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{group}\n{ts}\n{seq}"))
}

pub fn decode_ptr(ptr: &str) -> Option<(String, i64, u64)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(ptr)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let mut it = raw.split('\n');
    let group = it.next()?.to_string();
    let ts = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    Some((group, ts, seq))
}

/// Anything fields can be read from.
pub trait Fields {
    fn get(&self, name: &str) -> V;
    /// A string field without copying it, when the record holds it as text.
    fn get_str(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// One log event during a query.
pub struct Rec<'a> {
    pub ts: i64,
    pub ingest: i64,
    pub seq: u64,
    pub msg: &'a str,
    pub stream: &'a str,
    pub group: &'a str,
    pub account: &'a str,
    /// Fields set by `fields`, `parse` and the like (later entries win).
    pub extra: Vec<(String, V)>,
    discovered: OnceCell<Vec<(String, V)>>,
}

impl<'a> Rec<'a> {
    pub fn new(
        ts: i64,
        ingest: i64,
        seq: u64,
        msg: &'a str,
        stream: &'a str,
        group: &'a str,
        account: &'a str,
    ) -> Self {
        Rec {
            ts,
            ingest,
            seq,
            msg,
            stream,
            group,
            account,
            extra: Vec::new(),
            discovered: OnceCell::new(),
        }
    }

    pub fn set(&mut self, name: &str, v: V) {
        self.extra.push((name.to_string(), v));
    }

    pub fn discovered(&self) -> &[(String, V)] {
        self.discovered.get_or_init(|| discover(self.msg))
    }
}

impl Fields for Rec<'_> {
    fn get(&self, name: &str) -> V {
        if let Some((_, v)) = self.extra.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        match name {
            "@timestamp" => V::Time(self.ts),
            "@message" => V::Str(self.msg.to_string()),
            "@logStream" => V::Str(self.stream.to_string()),
            "@log" => V::Str(format!("{}:{}", self.account, self.group)),
            "@ingestionTime" => V::Time(self.ingest),
            "@ptr" => V::Str(encode_ptr(self.group, self.ts, self.seq)),
            _ => self
                .discovered()
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(V::Null),
        }
    }

    fn get_str(&self, name: &str) -> Option<&str> {
        if self.extra.iter().any(|(k, _)| k == name) {
            return None;
        }
        match name {
            "@message" => Some(self.msg),
            "@logStream" => Some(self.stream),
            _ => None,
        }
    }
}

/// A row of named values (after `stats`).
impl Fields for Vec<(String, V)> {
    fn get(&self, name: &str) -> V {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or(V::Null)
    }
}

/// Fields found in a message: flattened JSON members, or Lambda platform lines.
pub fn discover(msg: &str) -> Vec<(String, V)> {
    let t = msg.trim_start();
    if t.starts_with('{') {
        if let Ok(doc) = serde_json::from_str::<Json>(t) {
            let mut out = Vec::new();
            flatten("", &doc, &mut out, 0);
            return out;
        }
    }
    let mut out = Vec::new();
    for (prefix, kind) in [
        ("REPORT RequestId:", "REPORT"),
        ("START RequestId:", "START"),
        ("END RequestId:", "END"),
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            out.push(("@type".to_string(), V::Str(kind.to_string())));
            let rest = rest.trim_start();
            let id: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            out.push(("@requestId".to_string(), V::Str(id)));
            if kind == "REPORT" {
                for (label, field) in [
                    ("Duration:", "@duration"),
                    ("Billed Duration:", "@billedDuration"),
                    ("Memory Size:", "@memorySize"),
                    ("Max Memory Used:", "@maxMemoryUsed"),
                    ("Init Duration:", "@initDuration"),
                ] {
                    if let Some(v) = labelled_number(rest, label) {
                        out.push((field.to_string(), V::Num(v)));
                    }
                }
            }
        }
    }
    out
}

/// The number after `label` in a tab- or space-separated REPORT line; `Duration:` must not match
/// inside `Billed Duration:` or `Init Duration:`.
fn labelled_number(line: &str, label: &str) -> Option<f64> {
    let mut from = 0;
    while let Some(at) = line[from..].find(label) {
        let start = from + at;
        let before = line[..start].trim_end_matches([' ', '\t']);
        let glued =
            label == "Duration:" && (before.ends_with("Billed") || before.ends_with("Init"));
        if !glued {
            let rest = line[start + label.len()..].trim_start();
            let num: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            return num.parse().ok();
        }
        from = start + label.len();
    }
    None
}

fn flatten(prefix: &str, v: &Json, out: &mut Vec<(String, V)>, depth: usize) {
    if out.len() >= 1000 || depth > 32 {
        return;
    }
    match v {
        Json::Object(m) => {
            for (k, child) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, child, out, depth + 1);
            }
        }
        Json::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), child, out, depth + 1);
            }
        }
        Json::Null => out.push((prefix.to_string(), V::Null)),
        Json::Bool(b) => out.push((prefix.to_string(), V::Str(b.to_string()))),
        Json::Number(n) => out.push((prefix.to_string(), n.as_f64().map_or(V::Null, V::Num))),
        Json::String(s) => out.push((prefix.to_string(), V::Str(s.clone()))),
    }
}

pub const FUNCTIONS: [&str; 38] = [
    "strlen",
    "toupper",
    "tolower",
    "concat",
    "substr",
    "replace",
    "trim",
    "ltrim",
    "rtrim",
    "strcontains",
    "isempty",
    "isblank",
    "abs",
    "ceil",
    "floor",
    "greatest",
    "least",
    "log",
    "sqrt",
    "pow",
    "round",
    "datefloor",
    "dateceil",
    "frommillis",
    "tomillis",
    "bin",
    "isvalidip",
    "isvalidipv4",
    "isvalidipv6",
    "isipinsubnet",
    "isipv4insubnet",
    "isipv6insubnet",
    "ispresent",
    "coalesce",
    "unmask",
    "tonumber",
    "tostring",
    "exp",
];

pub fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn compare(a: &V, b: &V) -> Option<std::cmp::Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    match (a.num(), b.num()) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => Some(a.render().cmp(&b.render())),
    }
}

/// Total order for sorting: numbers before strings, nulls last.
pub fn sort_cmp(a: &V, b: &V) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_null(), b.is_null()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ => compare(a, b).unwrap_or(Equal),
    }
}

fn ip_in_subnet(ip: &str, cidr: &str) -> bool {
    let (Ok(ip), Some((net, bits))) = (ip.trim().parse::<IpAddr>(), cidr.trim().split_once('/'))
    else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Evaluate `e` against `r`.
pub fn eval(e: &Expr, r: &dyn Fields) -> V {
    match e {
        Expr::Field(f) => r.get(f),
        Expr::Num(n) => V::Num(*n),
        Expr::Str(s) => V::Str(s.clone()),
        Expr::Duration(ms) => V::Num(*ms as f64),
        Expr::Regex(re) => V::Str(re.as_str().to_string()),
        Expr::Star => V::Num(1.0),
        Expr::List(_) => V::Null,
        Expr::Not(a) => bool_v(!eval(a, r).truthy()),
        Expr::Neg(a) => eval(a, r).num().map_or(V::Null, |n| V::Num(-n)),
        Expr::Like(a, pat, negate) => {
            if let Expr::Field(f) = &**a {
                if let Some(text) = r.get_str(f) {
                    let hit = match &**pat {
                        Expr::Regex(re) => re.is_match(text),
                        Expr::Str(lit) => memmem::find(text.as_bytes(), lit.as_bytes()).is_some(),
                        other => memmem::find(text.as_bytes(), eval(other, r).render().as_bytes())
                            .is_some(),
                    };
                    return bool_v(hit != *negate);
                }
            }
            let v = eval(a, r);
            if v.is_null() {
                return bool_v(false);
            }
            let text = v.render();
            let hit = match &**pat {
                Expr::Regex(re) => re.is_match(&text),
                other => {
                    memmem::find(text.as_bytes(), eval(other, r).render().as_bytes()).is_some()
                }
            };
            bool_v(hit != *negate)
        }
        Expr::In(a, items, negate) => {
            let v = eval(a, r);
            let hit = items
                .iter()
                .any(|i| compare(&v, &eval(i, r)) == Some(std::cmp::Ordering::Equal));
            bool_v(hit != *negate)
        }
        Expr::Bin(op, a, b) => bin(*op, a, b, r),
        Expr::Call(name, args) => call(name, args, r),
    }
}

fn bin(op: BinOp, a: &Expr, b: &Expr, r: &dyn Fields) -> V {
    use std::cmp::Ordering::*;
    match op {
        BinOp::Or => return bool_v(eval(a, r).truthy() || eval(b, r).truthy()),
        BinOp::And => return bool_v(eval(a, r).truthy() && eval(b, r).truthy()),
        _ => {}
    }
    let (x, y) = (eval(a, r), eval(b, r));
    let cmp = || compare(&x, &y);
    match op {
        BinOp::Eq => bool_v(cmp() == Some(Equal)),
        BinOp::Ne => bool_v(matches!(cmp(), Some(Less | Greater))),
        BinOp::Lt => bool_v(cmp() == Some(Less)),
        BinOp::Le => bool_v(matches!(cmp(), Some(Less | Equal))),
        BinOp::Gt => bool_v(cmp() == Some(Greater)),
        BinOp::Ge => bool_v(matches!(cmp(), Some(Greater | Equal))),
        _ => {
            let (Some(p), Some(q)) = (x.num(), y.num()) else {
                return V::Null;
            };
            let n = match op {
                BinOp::Add => p + q,
                BinOp::Sub => p - q,
                BinOp::Mul => p * q,
                BinOp::Div if q != 0.0 => p / q,
                BinOp::Mod if q != 0.0 => p % q,
                BinOp::Pow => p.powf(q),
                _ => return V::Null,
            };
            if n.is_finite() {
                V::Num(n)
            } else {
                V::Null
            }
        }
    }
}

fn call(name: &str, args: &[Expr], r: &dyn Fields) -> V {
    let arg = |i: usize| args.get(i).map_or(V::Null, |e| eval(e, r));
    let s = |i: usize| arg(i).render();
    let n = |i: usize| arg(i).num();
    let num = |v: Option<f64>| v.filter(|f| f.is_finite()).map_or(V::Null, V::Num);
    match name {
        "strlen" => V::Num(s(0).chars().count() as f64),
        "toupper" => V::Str(s(0).to_uppercase()),
        "tolower" => V::Str(s(0).to_lowercase()),
        "concat" => V::Str((0..args.len()).map(s).collect()),
        "substr" => {
            let text: Vec<char> = s(0).chars().collect();
            let start = n(1).unwrap_or(0.0).max(0.0) as usize;
            let len = n(2).map_or(text.len(), |l| l.max(0.0) as usize);
            V::Str(text.iter().skip(start).take(len).collect())
        }
        "replace" => {
            let from = s(1);
            if from.is_empty() {
                V::Str(s(0))
            } else {
                V::Str(s(0).replace(&from, &s(2)))
            }
        }
        // With a second argument, the characters to trim instead of white space.
        "trim" | "ltrim" | "rtrim" => {
            let text = s(0);
            let chars: Option<Vec<char>> = (args.len() > 1).then(|| s(1).chars().collect());
            let strip = |c: char| match &chars {
                Some(set) => set.contains(&c),
                None => c.is_whitespace(),
            };
            V::Str(
                match name {
                    "trim" => text.trim_matches(strip),
                    "ltrim" => text.trim_start_matches(strip),
                    _ => text.trim_end_matches(strip),
                }
                .to_string(),
            )
        }
        "strcontains" => bool_v(s(0).contains(&s(1))),
        "isempty" => bool_v(s(0).is_empty()),
        "isblank" => bool_v(s(0).trim().is_empty()),
        "abs" => num(n(0).map(f64::abs)),
        "ceil" => num(n(0).map(f64::ceil)),
        "floor" => num(n(0).map(f64::floor)),
        "round" => num(n(0).map(f64::round)),
        "log" => num(n(0).filter(|x| *x > 0.0).map(f64::ln)),
        "exp" => num(n(0).map(f64::exp)),
        "sqrt" => num(n(0).filter(|x| *x >= 0.0).map(f64::sqrt)),
        "pow" => num(n(0).zip(n(1)).map(|(a, b)| a.powf(b))),
        "greatest" => num((0..args.len()).filter_map(n).reduce(f64::max)),
        "least" => num((0..args.len()).filter_map(n).reduce(f64::min)),
        "bin" | "datefloor" | "dateceil" => {
            let (t, period) = if name == "bin" && args.len() == 1 {
                (r.get("@timestamp").num(), n(0))
            } else {
                (n(0), n(1))
            };
            match (t, period) {
                (Some(t), Some(p)) if p >= 1.0 => {
                    let (t, p) = (t as i64, p as i64);
                    let floor = t.div_euclid(p) * p;
                    V::Time(if name == "dateceil" && floor != t {
                        floor + p
                    } else {
                        floor
                    })
                }
                _ => V::Null,
            }
        }
        "frommillis" => n(0).map_or(V::Null, |m| V::Time(m as i64)),
        "tomillis" => n(0).map_or(V::Null, |m| V::Num(m.trunc())),
        "tonumber" => num(n(0)),
        "tostring" => V::Str(s(0)),
        "isvalidip" => bool_v(s(0).trim().parse::<IpAddr>().is_ok()),
        "isvalidipv4" => bool_v(s(0).trim().parse::<std::net::Ipv4Addr>().is_ok()),
        "isvalidipv6" => bool_v(s(0).trim().parse::<std::net::Ipv6Addr>().is_ok()),
        "isipinsubnet" => bool_v(ip_in_subnet(&s(0), &s(1))),
        "isipv4insubnet" => {
            bool_v(s(0).trim().parse::<std::net::Ipv4Addr>().is_ok() && ip_in_subnet(&s(0), &s(1)))
        }
        "isipv6insubnet" => {
            bool_v(s(0).trim().parse::<std::net::Ipv6Addr>().is_ok() && ip_in_subnet(&s(0), &s(1)))
        }
        "ispresent" => bool_v(!arg(0).is_null()),
        "coalesce" => (0..args.len())
            .map(arg)
            .find(|v| !v.is_null())
            .unwrap_or(V::Null),
        "unmask" => arg(0),
        _ => V::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insights::parser::{parse, Command};

    fn filter_expr(q: &str) -> Expr {
        match parse(&format!("filter {q}")).unwrap().remove(0) {
            Command::Filter(e) => e,
            _ => unreachable!(),
        }
    }

    fn ev(q: &str, rec: &Rec) -> V {
        eval(&filter_expr(q), rec)
    }

    #[test]
    fn functions_and_system_fields() {
        let msg = r#"{"user":{"name":"Ann","ip":"10.1.2.3"},"n":5,"tags":["a","b"]}"#;
        let rec = Rec::new(
            1_700_000_000_123,
            1_700_000_000_200,
            9,
            msg,
            "s1",
            "grp",
            "123456789012",
        );
        assert_eq!(ev("user.name", &rec), V::Str("Ann".into()));
        assert_eq!(ev("tags.1", &rec), V::Str("b".into()));
        assert_eq!(ev("n * 2 + 1", &rec), V::Num(11.0));
        assert_eq!(ev("strlen(user.name)", &rec), V::Num(3.0));
        assert_eq!(ev("toupper(user.name)", &rec), V::Str("ANN".into()));
        assert_eq!(
            ev("concat(user.name, '-', n)", &rec),
            V::Str("Ann-5".into())
        );
        assert_eq!(ev("substr('abcdef', 2, 3)", &rec), V::Str("cde".into()));
        assert_eq!(
            ev("replace('a-b-c', '-', '+')", &rec),
            V::Str("a+b+c".into())
        );
        assert_eq!(ev("trim('  x ')", &rec), V::Str("x".into()));
        assert_eq!(
            ev("isIpInSubnet(user.ip, '10.1.0.0/16')", &rec),
            V::Num(1.0)
        );
        assert_eq!(
            ev("isIpInSubnet(user.ip, '10.2.0.0/16')", &rec),
            V::Num(0.0)
        );
        assert_eq!(ev("isValidIp('300.1.1.1')", &rec), V::Num(0.0));
        assert_eq!(ev("ispresent(nosuch)", &rec), V::Num(0.0));
        assert_eq!(ev("coalesce(nosuch, n)", &rec), V::Num(5.0));
        assert_eq!(ev("greatest(1, n, 3)", &rec), V::Num(5.0));
        assert_eq!(ev("ceil(2.1) + floor(2.9) + abs(-1)", &rec), V::Num(6.0));
        assert_eq!(
            ev("datefloor(@timestamp, 1m)", &rec),
            V::Time(1_699_999_980_000)
        );
        assert_eq!(
            ev("dateceil(@timestamp, 1m)", &rec),
            V::Time(1_700_000_040_000)
        );
        assert_eq!(
            ev("toMillis(@timestamp)", &rec),
            V::Num(1_700_000_000_123.0)
        );
        assert_eq!(ev("n in [1, 5]", &rec), V::Num(1.0));
        assert_eq!(ev("n not in [1, 5]", &rec), V::Num(0.0));
        assert_eq!(
            ev("@message like 'Ann' and @message =~ /\"n\":\\d/", &rec),
            V::Num(1.0)
        );
        assert_eq!(ev("@logStream = 's1'", &rec), V::Num(1.0));
        assert_eq!(ev("@log", &rec), V::Str("123456789012:grp".into()));
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        let p = ev("@ptr", &rec).render();
        assert_eq!(
            decode_ptr(&p),
            Some(("grp".to_string(), 1_700_000_000_123, 9))
        );
    }

    #[test]
    fn trims_and_ip_families() {
        let rec = Rec::new(0, 0, 0, "", "s", "g", "1");
        assert_eq!(ev("trim('--x--', '-')", &rec), V::Str("x".into()));
        assert_eq!(ev("ltrim('--x--', '-')", &rec), V::Str("x--".into()));
        assert_eq!(ev("rtrim('ab x ba', 'ab')", &rec), V::Str("ab x ".into()));
        assert_eq!(ev("ltrim(' \t x ')", &rec), V::Str("x ".into()));
        assert_eq!(
            ev("isIpv4InSubnet('10.1.2.3', '10.0.0.0/8')", &rec),
            V::Num(1.0)
        );
        assert_eq!(ev("isIpv4InSubnet('::1', '::/0')", &rec), V::Num(0.0));
        assert_eq!(
            ev("isIpv6InSubnet('2001:db8::5', '2001:db8::/32')", &rec),
            V::Num(1.0)
        );
        assert_eq!(
            ev("isIpv6InSubnet('10.1.2.3', '10.0.0.0/8')", &rec),
            V::Num(0.0)
        );
        assert_eq!(
            ev("isIpInSubnet('10.1.2.3', '10.1.2.0/33')", &rec),
            V::Num(0.0)
        );
        assert_eq!(ev("isValidIpV6('2001:db8::5')", &rec), V::Num(1.0));
        assert_eq!(ev("isValidIpV4('2001:db8::5')", &rec), V::Num(0.0));
    }

    #[test]
    fn lambda_report_lines() {
        let line = "REPORT RequestId: 3f1c2a\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 5.5 ms";
        let d = discover(line);
        let get = |k: &str| d.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("@type"), Some(V::Str("REPORT".into())));
        assert_eq!(get("@requestId"), Some(V::Str("3f1c2a".into())));
        assert_eq!(get("@duration"), Some(V::Num(102.25)));
        assert_eq!(get("@billedDuration"), Some(V::Num(103.0)));
        assert_eq!(get("@memorySize"), Some(V::Num(128.0)));
        assert_eq!(get("@maxMemoryUsed"), Some(V::Num(70.0)));
        assert_eq!(get("@initDuration"), Some(V::Num(5.5)));
    }

    #[test]
    fn number_rendering() {
        assert_eq!(V::Num(3.0).render(), "3");
        assert_eq!(V::Num(2.5).render(), "2.5");
        assert_eq!(V::Null.render(), "");
    }
}
