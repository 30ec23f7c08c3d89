//! YAML to JSON values, keeping where each value came from: the stack file's errors
//! name `file:line:column`. Built on yaml-rust2's event parser (anchors and aliases
//! resolved, plain scalars typed by the YAML 1.2 core schema).

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// Where each value (by JSON pointer, `""` for the root) starts.
pub type Positions = HashMap<String, Pos>;

/// A YAML syntax error.
#[derive(Debug, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

enum Frame {
    Seq(Vec<Value>, String, usize),
    Map(Map<String, Value>, String, Option<String>, usize),
}

struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    positions: Positions,
    anchors: HashMap<usize, Value>,
    error: Option<String>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

fn scalar(v: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(v);
    }
    match v.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::Number(i.into());
    }
    let looks_numeric = v
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric {
        if let Some(n) = v.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(v)
}

impl Builder {
    /// The JSON pointer of the value about to be added.
    fn next_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq(items, path, _)) => format!("{path}/{}", items.len()),
            Some(Frame::Map(_, path, Some(key), _)) => format!("{path}/{}", escape(key)),
            Some(Frame::Map(_, path, None, _)) => path.clone(),
        }
    }

    /// Whether the value about to be added is a mapping key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map(_, _, None, _)))
    }

    fn add(&mut self, v: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Seq(items, _, _)) => items.push(v),
            Some(Frame::Map(map, _, key, _)) => {
                if let Some(k) = key.take() {
                    map.insert(k, v);
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(v, style, anchor, _) => {
                if self.expecting_key() {
                    if let Some(Frame::Map(map, path, key, _)) = self.stack.last_mut() {
                        if map.contains_key(&v) {
                            self.error = Some(format!(
                                "{}:{}: duplicate key '{v}'",
                                mark.line(),
                                mark.col() + 1
                            ));
                        }
                        // The key's own position stands for the value's too.
                        self.positions
                            .insert(format!("{path}/{}", escape(&v)), pos(&mark));
                        *key = Some(v);
                    }
                    return;
                }
                let path = self.next_path();
                self.positions.entry(path).or_insert(pos(&mark));
                self.add(scalar(v, style), anchor);
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                let path = self.next_path();
                self.positions.entry(path).or_insert(pos(&mark));
                self.add(v, 0);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path();
                self.positions.entry(path.clone()).or_insert(pos(&mark));
                self.stack.push(Frame::Seq(Vec::new(), path, anchor));
            }
            Event::MappingStart(anchor, _) => {
                let path = self.next_path();
                self.positions.entry(path.clone()).or_insert(pos(&mark));
                self.stack.push(Frame::Map(Map::new(), path, None, anchor));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (v, anchor) = match frame {
                        Frame::Seq(items, _, a) => (Value::Array(items), a),
                        Frame::Map(map, _, _, a) => (Value::Object(map), a),
                    };
                    self.add(v, anchor);
                }
            }
            _ => {}
        }
    }
}

/// Parse one YAML document.
pub fn parse(text: &str) -> Result<(Value, Positions), SyntaxError> {
    let mut b = Builder {
        stack: Vec::new(),
        root: None,
        positions: HashMap::new(),
        anchors: HashMap::new(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| SyntaxError {
        line: e.marker().line(),
        col: e.marker().col() + 1,
        message: e.info().to_owned(),
    })?;
    if let Some(message) = b.error {
        let (line, rest) = message.split_once(':').unwrap_or(("0", &message));
        let (col, msg) = rest.split_once(": ").unwrap_or(("0", rest));
        return Err(SyntaxError {
            line: line.parse().unwrap_or(0),
            col: col.parse().unwrap_or(0),
            message: msg.to_owned(),
        });
    }
    // Whatever is missing at the top level is reported at the start of the file.
    let mut positions = b.positions;
    positions.insert(String::new(), Pos { line: 1, col: 1 });
    Ok((b.root.unwrap_or(Value::Null), positions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_positions() {
        let text = "stack: orders\nresources:\n  q:\n    type: sqs-queue\n    properties: { visibilityTimeoutSeconds: 30 }\n  w:\n    list: [1, \"2\", true, ~, 1.5]\n";
        let (v, p) = parse(text).unwrap();
        assert_eq!(v["stack"], "orders");
        assert_eq!(
            v["resources"]["q"]["properties"]["visibilityTimeoutSeconds"],
            30
        );
        assert_eq!(
            v["resources"]["w"]["list"],
            serde_json::json!([1, "2", true, null, 1.5])
        );
        assert_eq!(p["/stack"], Pos { line: 1, col: 1 });
        assert_eq!(p["/resources/q/type"], Pos { line: 4, col: 5 });
        assert_eq!(p["/resources/w/list/1"].line, 7);
    }

    #[test]
    fn syntax_and_duplicate_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1, "{e}");
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "duplicate key 'a'"));
    }

    #[test]
    fn anchors_and_aliases() {
        let (v, _) = parse("base: &b { cpu: 1 }\nother: *b\n").unwrap();
        assert_eq!(v["other"]["cpu"], 1);
    }
}
