//! References between planned resources. A field that names another resource of the plan is a
//! `Ref`, never a bare string, and a resource's dependencies are every `Ref` in its spec, found by
//! walking the spec as serde sees it: a new field that refers to another resource is a
//! dependency by its type, with nothing to list by hand.

use serde::ser::{self, Serialize};

/// The plan key of another resource this one refers to (and so depends on).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ref(pub String);

/// The name the walk recognizes a `Ref` by (serialized as a newtype struct of this name, which
/// JSON prints as the bare key).
const REF: &str = "bookstore::plan::Ref";

impl Serialize for Ref {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(REF, &self.0)
    }
}

impl Ref {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Ref {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Ref {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Ref {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Ref {
    fn from(key: &str) -> Ref {
        Ref(key.to_string())
    }
}

impl From<String> for Ref {
    fn from(key: String) -> Ref {
        Ref(key)
    }
}

impl From<&String> for Ref {
    fn from(key: &String) -> Ref {
        Ref(key.clone())
    }
}

impl PartialEq<str> for Ref {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for Ref {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Ref> for String {
    fn eq(&self, other: &Ref) -> bool {
        *self == other.0
    }
}

/// Every `Ref` in `value`, sorted, each once.
pub fn refs_of<T: Serialize + ?Sized>(value: &T) -> Vec<String> {
    let mut walk = Walk(Vec::new());
    value
        .serialize(&mut walk)
        .expect("walking a spec cannot fail");
    walk.0.sort();
    walk.0.dedup();
    walk.0
}

/// A serializer that writes nothing and keeps the keys of the `Ref`s it passes.
struct Walk(Vec<String>);

#[derive(Debug)]
struct Never;

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unreachable")
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<M: std::fmt::Display>(_: M) -> Never {
        Never
    }
}

type R = Result<(), Never>;

/// Serializer methods that pass a value the walk ignores.
macro_rules! ignore {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, _: $ty) -> R {
            Ok(())
        })*
    };
}

/// A compound value's parts: each walked in turn.
macro_rules! walk_parts {
    ($($trait:ident :: $method:ident $(($name:ty))?),* $(,)?) => {
        $(impl ser::$trait for &mut Walk {
            type Ok = ();
            type Error = Never;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $name,)? v: &T) -> R {
                v.serialize(&mut **self)
            }
            fn end(self) -> R {
                Ok(())
            }
        })*
    };
}

impl ser::Serializer for &mut Walk {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    ignore!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> R {
        if name == REF {
            if let Ok(serde_json::Value::String(key)) = serde_json::to_value(v) {
                self.0.push(key);
            }
            return Ok(());
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        v: &T,
    ) -> R {
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        Ok(self)
    }
}

walk_parts!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
    SerializeStruct::serialize_field(&'static str),
    SerializeStructVariant::serialize_field(&'static str),
);

impl ser::SerializeMap for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> R {
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    #[serde(tag = "kind")]
    enum Nested {
        A {
            one: Ref,
            maybe: Option<Ref>,
            many: Vec<Ref>,
            inner: Inner,
            not_a_ref: String,
        },
    }

    #[derive(serde::Serialize)]
    struct Inner {
        deep: Option<Ref>,
        list: Vec<Item>,
    }

    #[derive(serde::Serialize)]
    struct Item {
        from: Option<Ref>,
    }

    #[test]
    fn every_ref_is_found_however_deep_and_nothing_else() {
        let v = Nested::A {
            one: "vpc".into(),
            maybe: Some("sg".into()),
            many: vec!["subnet-b".into(), "subnet-a".into(), "vpc".into()],
            inner: Inner {
                deep: Some("db".into()),
                list: vec![
                    Item { from: None },
                    Item {
                        from: Some("lb".into()),
                    },
                ],
            },
            not_a_ref: "10.0.0.0/16".into(),
        };
        assert_eq!(
            refs_of(&v),
            ["db", "lb", "sg", "subnet-a", "subnet-b", "vpc"]
        );
        // JSON shows a reference as the bare key.
        assert_eq!(serde_json::to_value(Ref::from("vpc")).unwrap(), "vpc");
    }
}
