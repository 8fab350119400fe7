//! Redirect rules in the API: a flat condition object (`type`, `value`, `key`). The
//! values each type takes are stated in the document by [`crate::spec`] (one `oneOf`
//! branch per type) and checked by the service, which names the field it refuses.

use super::input::Text;
use hoplink::rules::{ConditionType, RedirectRule, RuleCondition};
use poem_openapi::{Enum, Object};

/// What a condition tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ConditionTypeBody {
    /// `desktop`, `mobile` or `tablet`.
    Device,
    /// `ios`, `android`, `windows`, `macos`, `linux` or `chromeos`.
    Os,
    /// `chrome`, `safari`, `firefox`, `edge`, `opera` or `samsung`.
    Browser,
    /// A language tag (`de`, `pt-BR`): matches an `Accept-Language` entry with q > 0
    /// that equals it or starts with it and `-`.
    Language,
    /// ISO 3166-1 alpha-2 (`DE`): the trusted proxy's country header, else GeoIP.
    Country,
    /// The query parameter `key` has this value (`*`: any value).
    Query,
    /// The client address is this address or in this CIDR block.
    Ip,
    /// Now is after this RFC 3339 instant.
    After,
    /// Now is before this RFC 3339 instant.
    Before,
}

impl From<ConditionTypeBody> for ConditionType {
    fn from(t: ConditionTypeBody) -> Self {
        match t {
            ConditionTypeBody::Device => ConditionType::Device,
            ConditionTypeBody::Os => ConditionType::Os,
            ConditionTypeBody::Browser => ConditionType::Browser,
            ConditionTypeBody::Language => ConditionType::Language,
            ConditionTypeBody::Country => ConditionType::Country,
            ConditionTypeBody::Query => ConditionType::Query,
            ConditionTypeBody::Ip => ConditionType::Ip,
            ConditionTypeBody::After => ConditionType::After,
            ConditionTypeBody::Before => ConditionType::Before,
        }
    }
}

impl From<ConditionType> for ConditionTypeBody {
    fn from(t: ConditionType) -> Self {
        match t {
            ConditionType::Device => ConditionTypeBody::Device,
            ConditionType::Os => ConditionTypeBody::Os,
            ConditionType::Browser => ConditionTypeBody::Browser,
            ConditionType::Language => ConditionTypeBody::Language,
            ConditionType::Country => ConditionTypeBody::Country,
            ConditionType::Query => ConditionTypeBody::Query,
            ConditionType::Ip => ConditionTypeBody::Ip,
            ConditionType::After => ConditionTypeBody::After,
            ConditionType::Before => ConditionTypeBody::Before,
        }
    }
}

/// One test of a visit.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, rename = "RuleCondition")]
pub struct ConditionBody {
    /// What is tested.
    #[oai(rename = "type")]
    pub kind: ConditionTypeBody,
    /// The value it must have: see the branch of its type.
    #[oai(validator(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    ))]
    pub value: Text,
    /// The query parameter of a `query` condition (required there, ignored elsewhere).
    #[oai(
        validator(
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
        ),
        nullable
    )]
    pub key: Option<Text>,
}

/// A destination and the conditions under which it applies.
#[derive(Debug, Clone, Object)]
#[oai(deny_unknown_fields, rename = "RedirectRule")]
pub struct RuleBody {
    /// Where matching visitors go (the same rules as `original_url`).
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub url: Text,
    /// 1 to 10 conditions, all of which must match.
    #[oai(validator(min_items = 1, max_items = 10))]
    pub conditions: Vec<ConditionBody>,
}

impl RuleBody {
    /// The rule as the service takes it.
    pub fn into_rule(self) -> RedirectRule {
        RedirectRule {
            url: self.url.into_inner(),
            conditions: self
                .conditions
                .into_iter()
                .map(|c| RuleCondition {
                    kind: c.kind.into(),
                    value: c.value.into_inner(),
                    key: c.key.map(Text::into_inner),
                })
                .collect(),
        }
    }

    /// The rule as answered.
    pub fn of(rule: RedirectRule) -> Self {
        RuleBody {
            url: Text(rule.url),
            conditions: rule
                .conditions
                .into_iter()
                .map(|c| ConditionBody {
                    kind: c.kind.into(),
                    value: Text(c.value),
                    key: c.key.map(Text),
                })
                .collect(),
        }
    }

    /// An app-store rule, for examples.
    pub fn example() -> Vec<RuleBody> {
        let condition = |kind, value: &str| ConditionBody {
            kind,
            value: value.into(),
            key: None,
        };
        vec![
            RuleBody {
                url: "https://apps.apple.com/app/id284882215".into(),
                conditions: vec![condition(ConditionTypeBody::Os, "ios")],
            },
            RuleBody {
                url: "https://example.com/de/launch".into(),
                conditions: vec![condition(ConditionTypeBody::Language, "de")],
            },
        ]
    }
}

/// Rules as the service takes them.
pub fn into_rules(rules: Vec<RuleBody>) -> Vec<RedirectRule> {
    rules.into_iter().map(RuleBody::into_rule).collect()
}
