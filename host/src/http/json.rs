//! [`Json`]: axum's JSON extractor with the contract's errors. Malformed JSON is 400
//! `bad_request`; a well-formed body with a wrong or missing field is 400 `validation_failed`
//! naming the field (`settings.variants[2].quality`); a wrong content type is 415; a body over
//! the limit is 413.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::http::error::AppError;

#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// The body deadline when no [`super::body_guard::BodyDeadline`] was handed down.
const DEFAULT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Error::UnsupportedMediaType("expected Content-Type: application/json".into()).into());
        }
        // A client trickling its body must not hold the request (and its connection) forever.
        let deadline = req.extensions().get::<super::body_guard::BodyDeadline>().map_or(DEFAULT_DEADLINE, |d| d.0);
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
            .await
            .map_err(|_| Error::Stalled(format!("the request body did not arrive within {} s", deadline.as_secs())))?;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge("request body too large".into())
            } else {
                Error::Malformed(format!("cannot read the request body: {}", rejection.body_text()))
            }
        })?;
        parse(&bytes).map(Json)
    }
}

/// Deserializes a JSON body, naming the offending field on a type error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Every body of the API is an object; serde would also read a struct from an array
    // (`[null, null]` as `{"name": null, "settings": null}`).
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        let malformed = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err();
        return Err(if malformed {
            Error::Malformed("malformed JSON: not a JSON value".into()).into()
        } else {
            Error::validation("body", "must be a JSON object").into()
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        use serde_json::error::Category;
        let inner = e.inner();
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => Error::Malformed(format!("malformed JSON: {inner}")),
            Category::Data => {
                let message = strip_position(&inner.to_string());
                // serde reports a missing field at its parent's path; name the field itself.
                let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next());
                let field = match (e.path().to_string().as_str(), missing) {
                    (".", Some(name)) => name.to_owned(),
                    (".", None) => "body".to_owned(),
                    (path, Some(name)) => format!("{path}.{name}"),
                    (path, None) => path.to_owned(),
                };
                Error::validation(field, message)
            }
        }
    })?;
    de.end().map_err(|e| Error::Malformed(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 17": noise once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        settings: Settings,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Settings {
        variants: Vec<Variant>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Variant {
        quality: u8,
    }

    #[test]
    fn names_the_field_of_a_type_error() {
        let err =
            parse::<Body>(br#"{"name":"a","settings":{"variants":[{"quality":1},{"quality":"x"}]}}"#).expect_err("bad");
        assert_eq!(err.code(), "validation_failed");
        assert!(err.to_string().starts_with("settings.variants[1].quality: invalid type"), "{err}");
    }

    #[test]
    fn names_a_missing_field() {
        let err = parse::<Body>(br#"{"settings":{"variants":[]}}"#).expect_err("bad");
        assert_eq!(err.code(), "validation_failed");
        assert_eq!(err.to_string(), "name: missing field `name`");
        let err = parse::<Body>(br#"{"name":"a","settings":{"variants":[{}]}}"#).expect_err("bad");
        assert_eq!(err.to_string(), "settings.variants[0].quality: missing field `quality`");
    }

    #[test]
    fn a_body_is_an_object_never_an_array() {
        for body in [&br#"[null, {"variants": []}]"#[..], b"[]", b" 42", br#""name""#] {
            let err = parse::<Body>(body).expect_err("not an object");
            assert_eq!(err.code(), "validation_failed", "{}", String::from_utf8_lossy(body));
            assert_eq!(err.to_string(), "body: must be a JSON object");
        }
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        for body in [&b"{"[..], b"nope", b"", br#"{"name":"a","settings":{"variants":[]}} trailing"#] {
            let err = parse::<Body>(body).expect_err("bad");
            assert_eq!(err.code(), "bad_request", "{}", String::from_utf8_lossy(body));
        }
    }
}
