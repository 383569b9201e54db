//! What the `.proto` files cannot say about a field's JSON form: Go pointer-ness,
//! `omitempty`, inline embedding and renamed JSON keys, read from the generated
//! `field_notes.txt`.

use std::collections::HashMap;

/// JSON facts about one protobuf field (by full name `package.Message.field`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FieldNote {
    /// The Go field is a pointer: a zero value on the wire was set on purpose and stays,
    /// an absent one is nil.
    pub pointer: bool,
    /// The JSON tag lacks `omitempty`: zero values are written, nil slices/maps/pointers
    /// as `null`. Fields without notes (groups outside k8s.io/api) count as `omitempty`.
    pub always: bool,
    /// The Go field is embedded with `json:",inline"`: its fields belong to the parent.
    pub inline: bool,
    /// The JSON key, when it differs from the protobuf field name.
    pub json_name: Option<&'static str>,
}

/// All notes: per field (by full field name) and per message (Go field order).
pub struct FieldNotes {
    fields: HashMap<&'static str, FieldNote>,
    orders: HashMap<&'static str, Vec<&'static str>>,
}

impl FieldNotes {
    /// Parses `NOTE package.Message.field` and `order package.Message f1,f2,…` lines;
    /// `#` starts a comment line.
    pub fn parse(text: &'static str) -> Result<Self, String> {
        let mut notes: HashMap<&'static str, FieldNote> = HashMap::new();
        let mut orders = HashMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (kind, field) = line
                .split_once(' ')
                .ok_or_else(|| format!("malformed field note {line:?}"))?;
            if kind == "order" {
                let (message, names) = field
                    .split_once(' ')
                    .ok_or_else(|| format!("malformed field order {line:?}"))?;
                orders.insert(message, names.split(',').collect());
                continue;
            }
            let note = notes.entry(field).or_default();
            match kind {
                "pointer" => note.pointer = true,
                "always" => note.always = true,
                "inline" => note.inline = true,
                _ => match kind.strip_prefix("json=") {
                    Some(name) => note.json_name = Some(name),
                    None => return Err(format!("unknown field note {kind:?}")),
                },
            }
        }
        Ok(Self {
            fields: notes,
            orders,
        })
    }

    /// The note for a field; fields without one are plain non-pointer `omitempty` fields.
    pub fn get(&self, full_name: &str) -> FieldNote {
        self.fields.get(full_name).copied().unwrap_or_default()
    }

    /// The Go order of a message's fields (protobuf names), where it differs from the
    /// field-number order.
    pub fn field_order(&self, message: &str) -> Option<&[&'static str]> {
        self.orders.get(message).map(Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_of_note() {
        let notes = FieldNotes::parse(
            "# header\npointer a.B.c\ninline a.B.d\njson=uid a.B.uID\npointer a.B.uID\nalways a.B.e\norder a.B d,c\n",
        )
        .unwrap();
        assert_eq!(
            notes.get("a.B.c"),
            FieldNote {
                pointer: true,
                ..Default::default()
            }
        );
        assert!(notes.get("a.B.d").inline);
        assert!(notes.get("a.B.e").always && !notes.get("a.B.e").pointer);
        assert_eq!(
            notes.get("a.B.uID"),
            FieldNote {
                pointer: true,
                json_name: Some("uid"),
                ..Default::default()
            }
        );
        assert_eq!(notes.get("a.B.none"), FieldNote::default());
        assert_eq!(notes.field_order("a.B"), Some(&["d", "c"][..]));
        assert_eq!(notes.field_order("a.C"), None);
        assert!(FieldNotes::parse("bogus a.B.c").is_err());
    }

    #[test]
    fn generated_notes_know_the_fields_kubectl_relies_on() {
        let notes = FieldNotes::parse(include_str!("field_notes.txt")).unwrap();
        assert!(notes.get("api.apps.v1.DeploymentSpec.replicas").pointer);
        assert!(
            !notes
                .get("api.apps.v1.DeploymentSpec.minReadySeconds")
                .pointer
        );
        assert!(notes.get("api.core.v1.Container.name").always);
        assert!(!notes.get("api.core.v1.Container.image").always);
        assert!(
            notes
                .get("api.core.v1.SecretKeySelector.localObjectReference")
                .inline
        );
        assert_eq!(
            notes
                .get("api.authentication.v1.BoundObjectReference.uID")
                .json_name,
            Some("uid")
        );
    }
}
