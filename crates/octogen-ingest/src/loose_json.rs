//! Reading merchant JSON straight into typed records, as leniently as reading
//! it into a `serde_json::Value` and picking fields out of it — without
//! building that tree. Strings borrow from the input when they have no escapes.
//!
//! A merchant's field of an unexpected type never fails the record here: a
//! number where text was expected is read as its text, an object where a list
//! was expected is an empty list, and so on; the converter decides what each
//! field means. A field given twice keeps its last value, as a `Value` map
//! does. Only malformed JSON is an error.
//!
//! Shopify feeds were read through `Value` before: building and dropping the
//! tree was about a sixth of parsing a product (BENCHMARKS.md §5).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::text::{clean, split_list};

/// Visitor methods that answer one value whatever the JSON value they visit.
macro_rules! visits_give {
    ($value:expr; $($method:ident($($arg:ty)?)),* $(,)?) => {
        $(fn $method<E>(self $(, _: $arg)?) -> Result<Self::Value, E> {
            Ok($value)
        })*
    };
}

/// A JSON value where a scalar is expected.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Scalar<'de> {
    /// The key was not there.
    #[default]
    Absent,
    Null,
    Bool(bool),
    Number(Number),
    Text(Cow<'de, str>),
    /// An array or an object: kept whole, only for messages that quote it.
    Structure(Value),
}

impl Scalar<'_> {
    /// Text as given, or a number's text; trimmed, whitespace collapsed, `None` when empty.
    pub fn text(&self) -> Option<String> {
        match self {
            Scalar::Text(text) => clean(Some(text)),
            Scalar::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::Number(number) => number.as_u64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Scalar::Number(number) => number.as_i64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    /// Present with a value other than `null`.
    pub fn is_given(&self) -> bool {
        !matches!(self, Scalar::Absent | Scalar::Null)
    }
}

/// As the JSON was written (compactly), for messages.
impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Absent => Ok(()),
            Scalar::Null => f.write_str("null"),
            Scalar::Bool(flag) => write!(f, "{flag}"),
            Scalar::Number(number) => write!(f, "{number}"),
            Scalar::Text(text) => write!(f, "{}", Value::String(text.to_string())),
            Scalar::Structure(value) => write!(f, "{value}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(flag))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(number.into()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(number.into()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(number).map_or(Scalar::Null, Scalar::Number))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(text.to_string())))
    }

    fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(text)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Structure)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Scalar::Structure)
    }
}

/// A list of text values, as merchants write them: an array of strings (or
/// numbers), or one comma-separated string.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TextList<'de> {
    #[default]
    Missing,
    Items(Vec<Scalar<'de>>),
    Joined(Cow<'de, str>),
}

impl TextList<'_> {
    /// Cleaned values: array items that are text or numbers, or the parts of the string.
    pub fn values(&self) -> Vec<String> {
        match self {
            TextList::Missing => Vec::new(),
            TextList::Items(items) => items.iter().filter_map(Scalar::text).collect(),
            TextList::Joined(text) => split_list(text, ','),
        }
    }
}

impl<'de> Deserialize<'de> for TextList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextListVisitor)
    }
}

struct TextListVisitor;

impl<'de> Visitor<'de> for TextListVisitor {
    type Value = TextList<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<Scalar<'de>>()? {
            items.push(item);
        }
        Ok(TextList::Items(items))
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(TextList::Joined(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(TextList::Joined(Cow::Owned(text.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(TextList::Missing)
    }

    visits_give!(TextList::Missing; visit_bool(bool), visit_i64(i64), visit_u64(u64), visit_f64(f64), visit_unit(), visit_none());
}

/// A record type read from a JSON object field by field; unknown fields are skipped.
pub trait LooseObject<'de>: Default {
    /// Reads the value of `key` from `map` (`map.next_value()`), or skips it.
    fn read_field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
}

/// A JSON value where an object of type `T` is expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Shaped<T> {
    Object(T),
    /// Something else, named for messages: "an array", "a string", ...
    Other(&'static str),
}

impl<T> Default for Shaped<T> {
    fn default() -> Self {
        Shaped::Other("nothing")
    }
}

impl<T> Shaped<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Shaped::Object(object) => Some(object),
            Shaped::Other(_) => None,
        }
    }
}

impl<'de, T: LooseObject<'de>> Deserialize<'de> for Shaped<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapedVisitor(PhantomData))
    }
}

struct ShapedVisitor<T>(PhantomData<T>);

impl<'de, T: LooseObject<'de>> Visitor<'de> for ShapedVisitor<T> {
    type Value = Shaped<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = T::default();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            object.read_field(&key.0, &mut map)?;
        }
        Ok(Shaped::Object(object))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Shaped::Other("an array"))
    }

    visits_give!(Shaped::Other("a boolean"); visit_bool(bool));
    visits_give!(Shaped::Other("a number"); visit_i64(i64), visit_u64(u64), visit_f64(f64));
    visits_give!(Shaped::Other("a string"); visit_str(&str));
    visits_give!(Shaped::Other("null"); visit_unit(), visit_none());
}

/// A JSON value where an array of `T` is expected: anything else is an empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(List::default())
    }

    visits_give!(
        List::default();
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str),
        visit_unit(),
        visit_none(),
    );
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Scalar::deserialize(deserializer)? {
            Scalar::Text(text) => Ok(Key(text)),
            other => Err(de::Error::custom(format!("object key {other} is not a string"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq)]
    struct Item<'de> {
        name: Scalar<'de>,
        tags: TextList<'de>,
        parts: List<Shaped<Item<'de>>>,
    }

    impl<'de> LooseObject<'de> for Item<'de> {
        fn read_field<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
            match key {
                "name" => self.name = map.next_value()?,
                "tags" => self.tags = map.next_value()?,
                "parts" => self.parts = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }

    fn item(json: &str) -> Shaped<Item<'_>> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn fields_of_any_type_are_read_as_a_value_tree_would_give_them() {
        let Shaped::Object(read) =
            item(r#"{"name": "Tee", "tags": "a, b", "extra": {"x": [1]}, "parts": [3, {"name": 7}]}"#)
        else {
            panic!("an object")
        };
        assert!(matches!(read.name, Scalar::Text(Cow::Borrowed("Tee"))), "borrowed: {:?}", read.name);
        assert_eq!(read.tags.values(), ["a", "b"]);
        assert_eq!(read.parts.0.len(), 2);
        assert_eq!(read.parts.0[0], Shaped::Other("a number"));
        assert_eq!(read.parts.0[1].object().unwrap().name.text().as_deref(), Some("7"));

        let Shaped::Object(odd) = item(r#"{"name": {"a": [1, "b"]}, "tags": ["x", 2, null, {}], "parts": "none"}"#)
        else {
            panic!("an object")
        };
        assert_eq!(odd.name.text(), None);
        assert_eq!(odd.name.to_string(), r#"{"a":[1,"b"]}"#);
        assert_eq!(odd.tags.values(), ["x", "2"]);
        assert!(odd.parts.0.is_empty());

        assert_eq!(item(r#"["an", "array"]"#), Shaped::Other("an array"));
        assert_eq!(item("null"), Shaped::Other("null"));
        assert_eq!(item(r#""text""#), Shaped::Other("a string"));
    }

    #[test]
    fn the_last_of_a_repeated_field_wins_and_escapes_are_read() {
        let Shaped::Object(read) = item(r#"{"name": "first", "name": "Caf\u00e9 \"Noir\""}"#) else {
            panic!("an object")
        };
        assert_eq!(read.name.text().as_deref(), Some("Café \"Noir\""));
        assert_eq!(read.name.to_string(), r#""Café \"Noir\"""#);
    }

    #[test]
    fn numbers_read_as_a_value_tree_reads_them() {
        for json in ["3", "-4", "2.5", "3.0", "18446744073709551615", "1e3"] {
            let scalar: Scalar = serde_json::from_str(json).unwrap();
            let value: Value = serde_json::from_str(json).unwrap();
            assert_eq!(scalar.as_u64(), value.as_u64(), "{json}");
            assert_eq!(scalar.as_i64(), value.as_i64(), "{json}");
            assert_eq!(scalar.text(), Some(value.to_string()), "{json}");
        }
        assert!(serde_json::from_str::<Scalar>("1e400").is_err(), "out of range, as for a Value");
        assert!(serde_json::from_str::<Shaped<Item>>(r#"{"name": "unterminated}"#).is_err());
    }
}
