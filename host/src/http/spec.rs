//! The spec as served: what the routes' annotations say, completed with what every route answers
//! by construction, so that it is exact without each route repeating it. The extractors
//! (`extract::Path`, `extract::Query`, `Json`, the multipart readers) refuse a malformed path
//! parameter, query or body with 400 and a body of the wrong type with 415, on every route that
//! has one; and OpenAPI requires every response to carry a description.

use axum::http::StatusCode;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// `spec` with the refusals every route makes documented, and every response described.
pub(super) fn completed(mut spec: OpenApi) -> OpenApi {
    for item in spec.paths.paths.values_mut() {
        for operation in operations(item) {
            let takes = |place: ParameterIn| {
                operation.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
            };
            let (in_path, in_query) = (takes(ParameterIn::Path), takes(ParameterIn::Query));
            let bodies: Vec<String> = match &operation.request_body {
                Some(RefOr::T(body)) => body.content.keys().cloned().collect(),
                _ => Vec::new(),
            };
            if in_path {
                refuses(operation, "400", "`bad_request`: a malformed path parameter (an id that is not a UUID)");
            }
            if in_query {
                refuses(
                    operation,
                    "400",
                    "`validation_failed`: a query parameter out of its range (the message names it)",
                );
            }
            if !bodies.is_empty() {
                refuses(operation, "400", "`bad_request` or `validation_failed`: a malformed or invalid body");
                let types = bodies.join(" or ");
                refuses(operation, "415", &format!("`unsupported_media_type`: the body is not {types}"));
            }
            describe_every_response(operation);
        }
    }
    spec
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// Documents `status` as the contract's error body, unless the route already documents it.
fn refuses(operation: &mut Operation, status: &str, description: &str) {
    let responses = &mut operation.responses.responses;
    if !responses.contains_key(status) {
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let response = ResponseBuilder::new().description(description).content("application/json", body).build();
        responses.insert(status.to_owned(), RefOr::T(response));
    }
}

/// Every response a route gave no description described by its status's reason phrase
/// (`Not Found`): validators and client generators refuse a document without.
fn describe_every_response(operation: &mut Operation) {
    for (status, response) in &mut operation.responses.responses {
        let RefOr::T(response) = response else { continue };
        if response.description.is_empty() {
            let reason = status.parse().ok().and_then(|s| StatusCode::from_u16(s).ok());
            let reason = reason.and_then(|s| s.canonical_reason()).unwrap_or("The answer");
            response.description = reason.to_owned();
        }
    }
}
