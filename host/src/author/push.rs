//! `mbk-host plugin push FILE --name N --version V`: registers a component through the API
//! (`POST /plugins`), as the user whose token is `MBK_TOKEN`, or who logs in at a prompt, on the
//! host at `MBK_URL` (default `http://127.0.0.1:8080`; plain HTTP, as on a host's own machine or
//! behind its proxy). Prints the registered plugin.

use std::io::{BufRead, Write};

use anyhow::{Context, bail};
use serde_json::Value;

pub struct Push<'a> {
    pub url: &'a str,
    pub token: Option<String>,
    pub wasm: Vec<u8>,
    pub name: &'a str,
    pub version: &'a str,
}

/// Registers the plugin; the API's answer (the Plugin).
pub async fn push(p: Push<'_>) -> anyhow::Result<Value> {
    let url = p.url.trim_end_matches('/');
    if !url.starts_with("http://") {
        bail!("MBK_URL must be an http:// URL (got {url:?})");
    }
    let client = reqwest::Client::new();
    let token = match p.token {
        Some(token) => token,
        None => login(&client, url).await?,
    };
    let boundary = format!("mbk-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::with_capacity(p.wasm.len() + 512);
    for (field, value) in [("name", p.name), ("version", p.version)] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"plugin.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&p.wasm);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = client
        .post(format!("{url}/plugins"))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    answer(response).await
}

/// Asks for a username and password and logs in; the access token.
async fn login(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    eprint!("Username: ");
    std::io::stderr().flush().ok();
    let mut username = String::new();
    std::io::stdin().lock().read_line(&mut username).context("cannot read the username")?;
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let response = client
        .post(format!("{url}/auth/login"))
        .json(&serde_json::json!({"username": username.trim(), "password": password}))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let tokens = answer(response).await?;
    tokens["access_token"].as_str().map(str::to_owned).context("the login answer has no access_token")
}

/// The JSON of a 2xx answer, or the API's error as the error.
async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let code = body["error"]["code"].as_str().unwrap_or("?");
    let message = body["error"]["message"].as_str().unwrap_or("");
    bail!("the host answered {status}: {code}: {message}")
}
