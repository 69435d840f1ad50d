//! Subscribe messages (订阅消息, protocol notes §5): the values `subscribe/send` takes.

/// `miniprogram_state` values WeChat takes.
pub const MINIPROGRAM_STATES: &[&str] = &["developer", "trial", "formal"];
/// `lang` values WeChat takes.
pub const LANGS: &[&str] = &["zh_CN", "en_US", "zh_HK", "zh_TW"];

/// The usual length limit of a template field by its kind (the key without its number):
/// WeChat answers 47003 for a longer value.
pub fn field_limit(field: &str) -> usize {
    match field.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "thing" => 20,
        "character_string" | "number" | "letter" => 32,
        "name" => 10,
        "phrase" | "symbol" => 5,
        _ => 20,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limits_follow_the_fields_kind() {
        assert_eq!(super::field_limit("thing1"), 20);
        assert_eq!(super::field_limit("character_string12"), 32);
        assert_eq!(super::field_limit("name3"), 10);
        assert_eq!(super::field_limit("phrase2"), 5);
        assert_eq!(super::field_limit("date4"), 20);
    }
}
