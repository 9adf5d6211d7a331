//! `GET /plugins` and `GET /plugins/{id}` (anyone logged in, what they may use; su everything),
//! `POST /plugins` and `DELETE /plugins/{id}` (su or admin; an admin's plugins are theirs).

use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Json;
use super::extract::Path;
use super::upload::{self, answer_or_refuse, next_part};
use crate::AppState;
use crate::auth::CurrentUser;
use crate::db::plugins::{self, PluginRow};
use crate::error::Error;
use crate::http::error::ErrorBody;
use crate::http::error::{AppError, AppResult};
use crate::http::extract::RequireAdmin;
use crate::plugins::registry::{self, MAX_PLUGIN_BYTES};
use crate::plugins::{Param, ParamType};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plugins, upload_plugin))
        .routes(routes!(get_plugin, delete_plugin))
        // The component plus the two text fields and the multipart framing.
        .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES + (64 << 10)))
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Plugin)]
pub struct PluginView {
    pub id: Uuid,
    #[schema(example = "sepia")]
    pub name: String,
    #[schema(example = "1.0.0")]
    pub version: String,
    /// SHA-256 of the component, hex.
    pub sha256: String,
    /// Bytes of the component.
    pub size: i64,
    /// The world version it exports: `mbk:plugin/plugin@0.2.0`, or `@0.1.0` for a component built
    /// before typed params (still run alike).
    #[schema(example = "mbk:plugin/plugin@0.2.0")]
    pub world: String,
    /// `mbk-standard`, part of every build: cannot be deleted.
    pub builtin: bool,
    /// The admin it belongs to; null for global plugins.
    pub owner_id: Option<Uuid>,
    /// `global` (builtin, or registered by a su: every project may use it) or `owner` (registered
    /// by an admin: only that admin's projects may).
    #[schema(example = "owner")]
    pub visibility: &'static str,
    /// The params it takes, as its `info()` declares them (world 0.2.0): a project's variant may
    /// set only these, to values of their types. Null for a 0.1.0 component (its params go
    /// unchecked).
    pub params: Option<Vec<ParamView>>,
    pub created_at: DateTime<Utc>,
}

/// One param a plugin takes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PluginParam)]
pub struct ParamView {
    #[schema(example = "strength")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamTypeView,
    /// The value the plugin uses when a variant does not set it.
    #[schema(example = "1")]
    pub default: Option<String>,
    /// Inclusive bounds: of an `int` or `float` value, of a `string`'s length in characters.
    #[schema(example = 0.0)]
    pub min: Option<f64>,
    #[schema(example = 1.0)]
    pub max: Option<f64>,
    /// The allowed values of an `enum` (empty for other types).
    pub values: Vec<String>,
    pub description: String,
}

/// How a param's value is written in a variant's `params` (always a string): `int` `-3`,
/// `float` `0.5`, `bool` `true` or `false`, `enum` one of its `values`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamTypeView {
    String,
    Int,
    Float,
    Bool,
    Enum,
}

impl From<Param> for ParamView {
    fn from(p: Param) -> Self {
        let kind = match p.kind {
            ParamType::String => ParamTypeView::String,
            ParamType::Int => ParamTypeView::Int,
            ParamType::Float => ParamTypeView::Float,
            ParamType::Bool => ParamTypeView::Bool,
            ParamType::Enum => ParamTypeView::Enum,
        };
        ParamView {
            name: p.name,
            kind,
            default: p.default,
            min: p.min,
            max: p.max,
            values: p.values,
            description: p.description,
        }
    }
}

impl From<PluginRow> for PluginView {
    fn from(p: PluginRow) -> Self {
        let params = p.declared_params().map(|params| params.into_iter().map(ParamView::from).collect());
        PluginView {
            params,
            id: p.id,
            name: p.name,
            version: p.version,
            sha256: p.sha256,
            size: p.size,
            world: p.world,
            builtin: p.builtin,
            visibility: if p.owner_id.is_some() { "owner" } else { "global" },
            owner_id: p.owner_id,
            created_at: p.created_at,
        }
    }
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PluginForm {
    /// The WebAssembly component (at most 64 MiB).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// 1 to 64 of a-z, 0-9, `-` and `_`, starting with a letter or digit.
    #[schema(example = "sepia", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: String,
    /// 1 to 64 of letters, digits, `.`, `-`, `+` and `_` (semver: `1.2.0`).
    #[schema(example = "1.0.0", pattern = "^[A-Za-z0-9.+_-]{1,64}$")]
    version: String,
}

/// Every registered plugin, the builtin `mbk-standard` first.
#[utoipa::path(
    get, path = "/plugins", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, body = Vec<PluginView>), (status = 401, body = ErrorBody))
)]
async fn list_plugins(State(state): State<AppState>, user: CurrentUser) -> AppResult<Json<Vec<PluginView>>> {
    let rows = plugins::list(&state.db, Some(user.id), user.is_su()).await?;
    Ok(Json(rows.into_iter().map(PluginView::from).collect()))
}

/// A plugin the caller may use (su: any).
#[utoipa::path(
    get, path = "/plugins/{id}", tag = "plugins", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = PluginView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn get_plugin(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<Uuid>,
) -> AppResult<Json<PluginView>> {
    Ok(Json(registry::find(&state, &user, id).await?.into()))
}

/// Register a plugin: a component exporting the `mbk:plugin` world, checked (compiled, linked
/// against what the host offers, `info()` called) before it is stored.
#[utoipa::path(
    post, path = "/plugins", tag = "plugins", security(("bearer" = [])),
    request_body(content = PluginForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Registered", body = PluginView),
        (status = 400, description = "A field is missing or malformed", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not su or admin", body = ErrorBody),
        (status = 409, description = "The caller (an admin) or the global scope (a su) has that name and version already", body = ErrorBody),
        (status = 413, description = "Over 64 MiB", body = ErrorBody),
        (status = 422, description = "`invalid_plugin`: not a component, not the plugin world, or imports the host does not offer", body = ErrorBody),
        (status = 503, description = "`unavailable`: every plugin sandbox of this process is busy (retry), or the database or storage does not answer", body = ErrorBody),
    )
)]
async fn upload_plugin(
    State(state): State<AppState>,
    admin: Result<RequireAdmin, AppError>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let mut multipart = match upload::open(&headers, multipart) {
        Ok(multipart) => multipart,
        Err(e) => return upload::refused(e),
    };
    // Refusals (a non-admin included) read on a little first: a client still sending would
    // otherwise never see them.
    let answer = match admin {
        Ok(RequireAdmin(caller)) => {
            receive(&state, &caller, &mut multipart).await.map(|row| (StatusCode::CREATED, Json(PluginView::from(row))))
        }
        Err(e) => Err(e),
    };
    answer_or_refuse(&mut multipart, answer).await
}

async fn receive(state: &AppState, caller: &CurrentUser, multipart: &mut Multipart) -> AppResult<PluginRow> {
    let (mut file, mut name, mut version) = (None::<Bytes>, None::<String>, None::<String>);
    while let Some(mut field) = next_part(multipart.next_field()).await? {
        let field_name = field.name().unwrap_or_default().to_owned();
        let limit = if field_name == "file" { MAX_PLUGIN_BYTES } else { 256 };
        let mut buf = BytesMut::new();
        while let Some(chunk) = next_part(field.chunk()).await? {
            if buf.len() + chunk.len() > limit {
                return Err(match field_name.as_str() {
                    "file" => Error::PayloadTooLarge(format!("a plugin may be at most {} MiB", MAX_PLUGIN_BYTES >> 20)),
                    other => Error::validation(other, "too long"),
                }
                .into());
            }
            buf.extend_from_slice(&chunk);
        }
        let text = |b: BytesMut| {
            String::from_utf8(b.to_vec())
                .map(|s| s.trim().to_owned())
                .map_err(|_| Error::validation(&field_name, "must be UTF-8 text"))
        };
        match field_name.as_str() {
            "file" => file = Some(buf.freeze()),
            "name" => name = Some(text(buf)?),
            "version" => version = Some(text(buf)?),
            _ => {} // other fields are ignored
        }
    }
    let file = file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Error::validation("file", "the multipart field `file` (the component) is required"))?;
    let name = name.ok_or_else(|| Error::validation("name", "the multipart field `name` is required"))?;
    let version = version.ok_or_else(|| Error::validation("version", "the multipart field `version` is required"))?;
    Ok(registry::register(state, caller, &name, &version, file).await?)
}

/// Delete a plugin (and its stored component, unless another version shares the bytes).
#[utoipa::path(
    delete, path = "/plugins/{id}", tag = "plugins", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"), (status = 401, body = ErrorBody),
        (status = 403, description = "Not su or admin, the builtin plugin, or a global plugin and not su", body = ErrorBody),
        (status = 404, description = "No such plugin, or another admin's", body = ErrorBody),
        (status = 409, description = "The last version of a name a project's settings still use", body = ErrorBody),
    )
)]
async fn delete_plugin(
    State(state): State<AppState>,
    RequireAdmin(caller): RequireAdmin,
    Path(id): Path<Uuid>,
) -> AppResult<StatusCode> {
    registry::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
