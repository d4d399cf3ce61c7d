//! The user name typed in a login request, read the way the VMS reads it.
//!
//! The VMS decides who is signed in; the gateway reads the typed name only to compare it with
//! the name the VMS reports (or, where the VMS reports none, to know whom to ask for a code).
//! A reader that is laxer or stricter than the VMS's would let one login mean two users, so
//! the body is parsed by its declared `Content-Type`, with kept parsers, and anything
//! ambiguous is refused before it is forwarded:
//!
//! ```text
//!  Content-Type                          read with              field
//!  application/x-www-form-urlencoded     form_urlencoded        the route's field name
//!  multipart/form-data                   multer                 the route's field name
//!  application/json, */*+json            serde_json (strict)    the route's JSON pointer
//!  none, with an empty body              -                      (the query string only)
//!  anything else                         refused: 400
//! ```
//!
//! ASP.NET model binding falls back to the query string when a field is not in the form, and
//! compares field names case-insensitively; so the query is read too, names are compared
//! without regard to ASCII case, and a name given more than once (in the body, in the query,
//! or in both, in any spelling) is refused: the gateway cannot know which one the VMS takes.

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_TYPE;

use crate::config::UsernameIn;

/// Why a login request is refused before it reaches the VMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// A body of a type the gateway does not read (or a body without a type).
    UnsupportedType,
    /// The body does not parse as its type says.
    Malformed,
    /// The user-name field is given more than once.
    Ambiguous,
}

impl FormError {
    pub fn reason(self) -> &'static str {
        match self {
            FormError::UnsupportedType => "login body of a type the gateway does not read",
            FormError::Malformed => "login body does not parse as its Content-Type says",
            FormError::Ambiguous => "user name given more than once in the login request",
        }
    }
}

/// The kinds of body a login may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Empty,
    Form,
    Multipart(String),
    Json,
}

/// The typed user name of a login request: `Ok(None)` when there is none.
///
/// `spec` names the field: a form field, or a JSON pointer whose last token is also the
/// field name looked for in a form or the query (a VMS that binds by name reads either).
pub async fn typed_username(
    spec: &UsernameIn,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Option<String>, FormError> {
    let field = field_name(spec);
    let mut found: Vec<String> = Vec::new();
    if let Some(q) = query {
        found.extend(form_values(q.as_bytes(), field));
    }
    match kind(headers, body)? {
        Kind::Empty => {}
        Kind::Form => found.extend(form_values(body, field)),
        Kind::Multipart(boundary) => found.extend(multipart_values(body, boundary, field).await?),
        Kind::Json => {
            let v = strict_json::parse(body).map_err(|()| FormError::Malformed)?;
            let pointer = match spec {
                UsernameIn::JsonPointer(p) => p.clone(),
                UsernameIn::FormField(f) => format!("/{}", escape_pointer_token(f)),
            };
            if let Some(s) = v.pointer(&pointer).and_then(json_scalar) {
                found.push(s);
            }
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop().and_then(|v| clean(&v))),
        _ => Err(FormError::Ambiguous),
    }
}

fn field_name(spec: &UsernameIn) -> &str {
    match spec {
        UsernameIn::FormField(f) => f,
        UsernameIn::JsonPointer(p) => p.rsplit('/').next().unwrap_or_default(),
    }
}

fn escape_pointer_token(t: &str) -> String {
    t.replace('~', "~0").replace('/', "~1")
}

fn kind(headers: &HeaderMap, body: &Bytes) -> Result<Kind, FormError> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let ct = match (types.next(), types.next()) {
        (None, _) => {
            return if body.is_empty() {
                Ok(Kind::Empty)
            } else {
                Err(FormError::UnsupportedType)
            };
        }
        (Some(v), None) => v.to_str().map_err(|_| FormError::UnsupportedType)?,
        (Some(_), Some(_)) => return Err(FormError::UnsupportedType),
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => Ok(Kind::Form),
        "multipart/form-data" => multer::parse_boundary(ct)
            .map(Kind::Multipart)
            .map_err(|_| FormError::Malformed),
        "application/json" => Ok(Kind::Json),
        e if e.starts_with("application/") && e.ends_with("+json") => Ok(Kind::Json),
        _ => Err(FormError::UnsupportedType),
    }
}

/// Every value of `field` (ASCII case ignored) in a url-encoded text.
fn form_values(text: &[u8], field: &str) -> Vec<String> {
    form_urlencoded::parse(text)
        .filter(|(k, _)| k.eq_ignore_ascii_case(field))
        .map(|(_, v)| v.into_owned())
        .collect()
}

async fn multipart_values(
    body: &Bytes,
    boundary: String,
    field: &str,
) -> Result<Vec<String>, FormError> {
    let data = body.clone();
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(data) });
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new().whole_stream(u64::try_from(body.len()).unwrap_or(u64::MAX)),
    );
    let mut parts = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut out = Vec::new();
    loop {
        let part = match parts.next_field().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(_) => return Err(FormError::Malformed),
        };
        let named = part.name().is_some_and(|n| n.eq_ignore_ascii_case(field));
        // Every part is read to its end, so a malformed later part is found too.
        let value = part.text().await.map_err(|_| FormError::Malformed)?;
        if named {
            out.push(value);
        }
    }
    Ok(out)
}

fn json_scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A typed name worth comparing: trimmed, not empty, at most 255 bytes, no control characters.
fn clean(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty() && t.len() <= 255 && !t.chars().any(char::is_control)).then(|| t.to_string())
}

/// JSON parsed like `serde_json::Value`, except that an object with the same key twice (ASCII
/// case ignored) is an error: parsers differ on which of the two they keep.
mod strict_json {
    use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    pub fn parse(body: &[u8]) -> Result<Value, ()> {
        serde_json::from_slice::<Strict>(body)
            .map(|s| s.0)
            .map_err(|_| ())
    }

    struct Strict(Value);

    impl<'de> Deserialize<'de> for Strict {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(Strict)
        }
    }

    struct StrictVisitor;

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON without duplicate keys")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Strict(v)) = seq.next_element()? {
                out.push(v);
            }
            Ok(Value::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut out = Map::new();
            while let Some(k) = map.next_key::<String>()? {
                if out.keys().any(|seen| seen.eq_ignore_ascii_case(&k)) {
                    return Err(de::Error::custom("duplicate key"));
                }
                let Strict(v) = map.next_value()?;
                out.insert(k, v);
            }
            Ok(Value::Object(out))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    fn read(
        ct: Option<&str>,
        query: Option<&str>,
        body: &str,
    ) -> Result<Option<String>, FormError> {
        let spec = UsernameIn::FormField("UserName".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(typed_username(
            &spec,
            &headers(ct),
            query,
            &Bytes::from(body.to_string()),
        ))
    }

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn form_fields_are_read_case_insensitively() {
        assert_eq!(
            read(FORM, None, "username=Alice&password=p"),
            Ok(Some("Alice".into()))
        );
        assert_eq!(read(FORM, None, "USERNAME=bob"), Ok(Some("bob".into())));
        assert_eq!(read(FORM, None, "user=x"), Ok(None));
        assert_eq!(
            read(
                Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
                None,
                "UserName=c"
            ),
            Ok(Some("c".into()))
        );
    }

    #[test]
    fn a_name_given_twice_anywhere_is_refused() {
        assert_eq!(
            read(FORM, None, "UserName=a&username=b"),
            Err(FormError::Ambiguous)
        );
        assert_eq!(
            read(FORM, None, "UserName=a&UserName=a"),
            Err(FormError::Ambiguous)
        );
        assert_eq!(
            read(FORM, Some("userName=victim"), "UserName=a"),
            Err(FormError::Ambiguous)
        );
    }

    #[test]
    fn the_query_counts_where_the_body_has_no_name() {
        assert_eq!(
            read(FORM, Some("UserName=victim"), "password=p"),
            Ok(Some("victim".into()))
        );
        assert_eq!(read(None, Some("username=q"), ""), Ok(Some("q".into())));
    }

    #[test]
    fn bodies_of_other_types_are_refused() {
        assert_eq!(
            read(Some("text/plain"), None, "UserName=a"),
            Err(FormError::UnsupportedType)
        );
        assert_eq!(
            read(None, None, "UserName=a"),
            Err(FormError::UnsupportedType)
        );
        assert_eq!(
            read(Some("application/xml"), None, "<u>a</u>"),
            Err(FormError::UnsupportedType)
        );
    }

    #[test]
    fn multipart_is_read_by_its_parts_not_as_url_encoding() {
        // The first part's value looks like a url-encoded field: it is a value, nothing more.
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n&UserName=decoy&\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"UserName\"\r\n\r\nvictim\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"Password\"\r\n\r\npw\r\n--XyZ--\r\n";
        assert_eq!(
            read(Some("multipart/form-data; boundary=XyZ"), None, body),
            Ok(Some("victim".into()))
        );
        let twice = "--b\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\na\r\n\
                     --b\r\nContent-Disposition: form-data; name=\"USERNAME\"\r\n\r\nb\r\n--b--\r\n";
        assert_eq!(
            read(Some("multipart/form-data; boundary=b"), None, twice),
            Err(FormError::Ambiguous)
        );
        assert_eq!(
            read(
                Some("multipart/form-data; boundary=b"),
                None,
                "--b\r\nno headers"
            ),
            Err(FormError::Malformed)
        );
        assert_eq!(
            read(Some("multipart/form-data"), None, "x"),
            Err(FormError::Malformed),
            "no boundary"
        );
    }

    #[test]
    fn json_is_read_strictly() {
        let ct = Some("application/json");
        assert_eq!(
            read(ct, None, r#"{"UserName":"j","pw":"x"}"#),
            Ok(Some("j".into()))
        );
        assert_eq!(
            read(ct, None, r#"{"UserName":"j","UserName":"k"}"#),
            Err(FormError::Malformed)
        );
        assert_eq!(
            read(ct, None, r#"{"username":"j","UserName":"k"}"#),
            Err(FormError::Malformed)
        );
        assert_eq!(read(ct, None, "not json"), Err(FormError::Malformed));
        assert_eq!(
            read(Some("application/vnd.x+json"), None, r#"{"UserName":7}"#),
            Ok(Some("7".into()))
        );
        let spec = UsernameIn::JsonPointer("/auth/user".into());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let got = rt.block_on(typed_username(
            &spec,
            &headers(ct),
            None,
            &Bytes::from_static(br#"{"auth":{"user":"bob"}}"#),
        ));
        assert_eq!(got, Ok(Some("bob".into())));
    }

    #[test]
    fn unusable_names_are_none() {
        assert_eq!(read(FORM, None, "UserName=++"), Ok(None));
        assert_eq!(read(FORM, None, "UserName=%00x"), Ok(None));
        let long = format!("UserName={}", "a".repeat(300));
        assert_eq!(read(FORM, None, &long), Ok(None));
    }
}
