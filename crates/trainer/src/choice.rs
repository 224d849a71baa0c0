//! Options with a fixed set of values (`model.cell`, `train.clip`, ...): typed enums in the
//! experiment, their names in TOML and on the command line, and one error for an unknown value
//! that names the option and lists the valid ones, from a file or a flag alike.

use serde::{Deserialize, Deserializer, Serializer};

/// An option whose value is one of a fixed list of names.
pub trait Choice: Sized + Copy + PartialEq + 'static {
    /// The option as a user writes it in TOML, e.g. `train.clip`.
    const OPTION: &'static str;
    /// Every value with its name, in the order an error lists them.
    const VALUES: &'static [(&'static str, Self)];
    /// Other names accepted for a value (not listed in errors).
    const ALIASES: &'static [(&'static str, Self)] = &[];

    /// The value's name (the first in [`Choice::VALUES`]).
    fn name(self) -> &'static str {
        Self::VALUES
            .iter()
            .find(|(_, v)| *v == self)
            .map(|(n, _)| *n)
            .expect("every value is listed in VALUES")
    }

    /// The value named `text` (names compare without case), or an error naming the option and
    /// the valid values: `train.clip = 'foo': expected global_norm, norm, value or none`.
    fn parse(text: &str) -> Result<Self, String> {
        Self::VALUES
            .iter()
            .chain(Self::ALIASES)
            .find(|(n, _)| n.eq_ignore_ascii_case(text))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!(
                    "{} = '{text}': expected {}",
                    Self::OPTION,
                    one_of(Self::VALUES.iter().map(|(n, _)| *n))
                )
            })
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// `#[serde(with = "as_name")]`: a [`Choice`] as its name.
pub mod as_name {
    use super::*;

    /// Writes the value's name.
    pub fn serialize<T: Choice, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.name())
    }

    /// Reads a name (see [`Choice::parse`]).
    pub fn deserialize<'de, T: Choice, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        T::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "as_names")]`: a list of [`Choice`]s as their names.
pub mod as_names {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Writes the values' names.
    pub fn serialize<T: Choice, S: Serializer>(values: &[T], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(values.len()))?;
        for v in values {
            seq.serialize_element(v.name())?;
        }
        seq.end()
    }

    /// Reads a list of names.
    pub fn deserialize<'de, T: Choice, D: Deserializer<'de>>(d: D) -> Result<Vec<T>, D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        texts
            .iter()
            .map(|t| T::parse(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fruit {
        Apple,
        Pear,
        Plum,
    }

    impl Choice for Fruit {
        const OPTION: &'static str = "basket.fruit";
        const VALUES: &'static [(&'static str, Self)] = &[
            ("apple", Fruit::Apple),
            ("pear", Fruit::Pear),
            ("plum", Fruit::Plum),
        ];
        const ALIASES: &'static [(&'static str, Self)] = &[("malus", Fruit::Apple)];
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Basket {
        #[serde(with = "as_name")]
        fruit: Fruit,
        #[serde(with = "as_names")]
        more: Vec<Fruit>,
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_values() {
        assert_eq!(Fruit::parse("Pear"), Ok(Fruit::Pear));
        assert_eq!(Fruit::parse("malus"), Ok(Fruit::Apple));
        assert_eq!(Fruit::Apple.name(), "apple");
        assert_eq!(
            Fruit::parse("kiwi").unwrap_err(),
            "basket.fruit = 'kiwi': expected apple, pear or plum"
        );
        let b = Basket {
            fruit: Fruit::Plum,
            more: vec![Fruit::Pear, Fruit::Apple],
        };
        let text = toml::to_string(&b).unwrap();
        assert!(text.contains("fruit = \"plum\""), "{text}");
        assert_eq!(toml::from_str::<Basket>(&text).unwrap(), b);
        let err = toml::from_str::<Basket>("fruit = \"fig\"\nmore = []")
            .unwrap_err()
            .to_string();
        assert!(err.contains("basket.fruit = 'fig'"), "{err}");
        let err = toml::from_str::<Basket>("fruit = \"pear\"\nmore = [\"fig\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("basket.fruit = 'fig'"), "{err}");
    }

    #[test]
    fn lists_read_like_sentences() {
        assert_eq!(one_of(["a"].into_iter()), "a");
        assert_eq!(one_of(["a", "b"].into_iter()), "a or b");
        assert_eq!(one_of(["a", "b", "c"].into_iter()), "a, b or c");
    }
}
