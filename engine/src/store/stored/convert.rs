//! Field-by-field conversion between stored record types and the types the rest of the engine
//! uses. The macros name every field and variant on both sides with no `..`, so a field or a
//! variant added to a domain type is a compile error here until a stored version holds it.

/// Converts a value into its counterpart (a stored type into its domain type or back; leaf
/// types into themselves).
pub trait Convert<T> {
    fn convert(self) -> T;
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

/// Leaf types whose encoding is their own (bincode's for integers and strings; uuid's 16
/// bytes for ids; chrono's RFC 3339 text for times): they convert into themselves. The golden
/// tests pin their bytes too.
macro_rules! leaf {
    ($($t:ty),* $(,)?) => {
        $(impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        })*
    };
}

leaf!(
    String,
    bool,
    u8,
    u32,
    u64,
    i32,
    i128,
    f64,
    [u8; 32],
    crate::domain::Timestamp,
    crate::ids::UserId,
    crate::ids::DatasetId,
    crate::ids::JobId,
    crate::ids::ArtifactId,
    crate::ids::CostRecordId,
    crate::ids::NotificationId,
    crate::ids::CheckpointId,
);

/// A stored struct beside its domain struct, with [`Convert`] both ways.
macro_rules! stored_struct {
    (
        $(#[$meta:meta])*
        $stored:ident <=> $domain:ident { $($field:ident : $ty:ty),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $stored {
            $(pub $field: $ty),*
        }

        impl $crate::store::stored::Convert<$domain> for $stored {
            fn convert(self) -> $domain {
                let $stored { $($field),* } = self;
                $domain { $($field: $crate::store::stored::Convert::convert($field)),* }
            }
        }

        impl $crate::store::stored::Convert<$stored> for $domain {
            fn convert(self) -> $stored {
                let $domain { $($field),* } = self;
                $stored { $($field: $crate::store::stored::Convert::convert($field)),* }
            }
        }
    };
}

/// A stored enum of unit variants beside its domain enum, with [`Convert`] both ways. bincode
/// writes a variant as its index: the variants' order is the layout.
macro_rules! stored_enum {
    (
        $(#[$meta:meta])*
        $stored:ident <=> $domain:ident { $($variant:ident),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub enum $stored {
            $($variant),*
        }

        impl $crate::store::stored::Convert<$domain> for $stored {
            fn convert(self) -> $domain {
                match self {
                    $($stored::$variant => $domain::$variant),*
                }
            }
        }

        impl $crate::store::stored::Convert<$stored> for $domain {
            fn convert(self) -> $stored {
                match self {
                    $($domain::$variant => $stored::$variant),*
                }
            }
        }
    };
}

/// Moves a record into another stored type's layout (an upgrade step, or a test's way back to
/// an older layout), naming each field once: a plain field moves as it is, `field => expr`
/// is computed from the fields, `drop { … }` names the fields the target has no place for and
/// `{ field: expr, … }` after the target gives its new fields. Like the macros above, it
/// names every field with no `..`, so a field added to either side is a compile error here.
macro_rules! repack {
    (
        $value:expr, $from:ident { $($field:ident $(=> $conv:expr)?),* $(,)? }
        $(drop { $($gone:ident),* $(,)? })?
        => $to:ident $({ $($new:ident : $val:expr),* $(,)? })?
    ) => {{
        let $from { $($field,)* $($($gone: _,)*)? } = $value;
        $to {
            $($field: $crate::store::stored::convert::repack!(@field $field $($conv)?),)*
            $($($new: $val,)*)?
        }
    }};
    (@field $field:ident) => { $field };
    (@field $field:ident $conv:expr) => { $conv };
}

pub(crate) use {repack, stored_enum, stored_struct};
