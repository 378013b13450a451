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

    fn serialize_bool(self, _: bool) -> R {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> R {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> R {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> R {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> R {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> R {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> R {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> R {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> R {
        Ok(())
    }
    fn serialize_f32(self, _: f32) -> R {
        Ok(())
    }
    fn serialize_f64(self, _: f64) -> R {
        Ok(())
    }
    fn serialize_char(self, _: char) -> R {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> R {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Ok(())
    }
    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(())
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

impl ser::SerializeSeq for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTuple for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

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

impl ser::SerializeStruct for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> R {
        v.serialize(&mut **self)
    }
    fn end(self) -> R {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Walk {
    type Ok = ();
    type Error = Never;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> R {
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
