//! The subset of flagd targeting rules (JsonLogic) this provider evaluates:
//! `if`, `==`, `!=`, `===`, `!==`, `!`, `and`, `or`, `in`, `starts_with`, `ends_with` and
//! `var` (reading `targetingKey`, the context attributes and `$flagd.flagKey`).
//! Anything else (`fractional`, `sem_ver`, `$ref`, …) is refused when the file is loaded.
//!
//! Managed by the platform.

use serde_json::{Map, Value};

const OPERATORS: &[&str] = &[
    "if",
    "==",
    "!=",
    "===",
    "!==",
    "!",
    "and",
    "or",
    "in",
    "starts_with",
    "ends_with",
    "var",
];

/// Checks that a rule uses only supported operators.
pub fn validate(rule: &Value) -> Result<(), String> {
    match rule {
        Value::Object(map) if map.is_empty() => Ok(()),
        Value::Object(map) => {
            if map.len() != 1 {
                return Err("a rule object must hold exactly one operator".to_owned());
            }
            let (op, args) = map.iter().next().expect("one entry");
            if !OPERATORS.contains(&op.as_str()) {
                return Err(format!("unsupported targeting operator `{op}`"));
            }
            match args {
                Value::Array(items) => items.iter().try_for_each(validate),
                other => validate(other),
            }
        }
        Value::Array(items) => items.iter().try_for_each(validate),
        _ => Ok(()),
    }
}

/// Evaluates a rule against the evaluation data.
pub fn evaluate(rule: &Value, data: &Map<String, Value>) -> Value {
    let Value::Object(map) = rule else {
        return match rule {
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| evaluate(item, data)).collect())
            }
            other => other.clone(),
        };
    };
    let Some((op, args)) = map.iter().next() else {
        return Value::Null;
    };
    let args: Vec<&Value> = match args {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let arg = |i: usize| args.get(i).map_or(Value::Null, |rule| evaluate(rule, data));
    match op.as_str() {
        "var" => {
            let key = arg(0);
            let key = key.as_str().unwrap_or_default();
            data.get(key).cloned().unwrap_or_else(|| arg(1))
        }
        "if" => {
            let mut i = 0;
            while i + 1 < args.len() {
                if truthy(&arg(i)) {
                    return arg(i + 1);
                }
                i += 2;
            }
            if i < args.len() { arg(i) } else { Value::Null }
        }
        "==" | "===" => Value::Bool(arg(0) == arg(1)),
        "!=" | "!==" => Value::Bool(arg(0) != arg(1)),
        "!" => Value::Bool(!truthy(&arg(0))),
        "and" => Value::Bool((0..args.len()).all(|i| truthy(&arg(i)))),
        "or" => Value::Bool((0..args.len()).any(|i| truthy(&arg(i)))),
        "in" => Value::Bool(match (arg(0), arg(1)) {
            (needle, Value::Array(items)) => items.contains(&needle),
            (Value::String(needle), Value::String(haystack)) => haystack.contains(&needle),
            _ => false,
        }),
        "starts_with" | "ends_with" => Value::Bool(match (arg(0), arg(1)) {
            (Value::String(s), Value::String(fix)) if op == "starts_with" => s.starts_with(&fix),
            (Value::String(s), Value::String(fix)) => s.ends_with(&fix),
            _ => false,
        }),
        _ => Value::Null,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}
