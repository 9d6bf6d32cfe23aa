//! `login` and `logout`: the registry credential in the Docker config file
//! (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`), the file
//! `docker login` writes and every command of wso2img reads.

use std::io::{IsTerminal, Read};

use clap::Args;

use super::Global;
use wso2img::transport::registry::{auth, Client};
use wso2img::{Error, Result};

/// `login` flags.
#[derive(Args)]
pub struct LoginArgs {
    /// The registry host, e.g. registry.example.com or 127.0.0.1:5000 (docker.io for Docker Hub).
    registry: String,
    /// The user name.
    #[arg(short, long)]
    username: String,
    /// Read the password (or token) from standard input; without it, a password piped on stdin is read too.
    #[arg(long)]
    password_stdin: bool,
}

/// `logout` flags.
#[derive(Args)]
pub struct LogoutArgs {
    /// The registry host.
    registry: String,
}

/// The registry host `input` names (`HOST[:PORT]`; a scheme and a `/v1/` or
/// `/v2/` path, as `docker login` accepts, are dropped; Docker Hub's aliases
/// are `docker.io`).
fn host(input: &str) -> Result<String> {
    let bare = input.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
    let bare = bare.strip_suffix("/v1").or_else(|| bare.strip_suffix("/v2")).unwrap_or(bare);
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_');
    if bare.is_empty() || !bare.chars().all(valid) {
        return Err(Error::usage(format!(
            "{input:?}: not a registry host; write HOST[:PORT], e.g. registry.example.com"
        )));
    }
    Ok(match bare {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    })
}

/// Reads the password: the first line of standard input.
fn password(a: &LoginArgs) -> Result<String> {
    let stdin = std::io::stdin();
    if !a.password_stdin && stdin.is_terminal() {
        return Err(Error::usage(format!(
            "login {}: give the password on standard input, e.g. `printf %s \"$TOKEN\" | wso2img login {} -u {} --password-stdin`",
            a.registry, a.registry, a.username
        )));
    }
    let mut text = String::new();
    stdin
        .lock()
        .take(64 << 10)
        .read_to_string(&mut text)
        .map_err(|e| Error::usage(format!("login {}: reading the password from stdin: {e}", a.registry)))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
    if line.is_empty() {
        return Err(Error::usage(format!("login {}: no password on standard input", a.registry)));
    }
    Ok(line)
}

/// Runs `login`: checks the credential with the registry, then stores it.
pub fn login(g: &Global, a: LoginArgs) -> Result<()> {
    let host = host(&a.registry)?;
    if a.username.is_empty() || a.username.contains(':') {
        return Err(Error::usage(format!("--username {:?}: a user name, without ':'", a.username)));
    }
    let password = password(&a)?;
    let credential = auth::Credential::Basic { username: a.username.clone(), password: password.clone() };
    let opts = g.registry();
    wso2img::transport::registry::runtime().block_on(async {
        let client = Client::connect(&host, &opts)?;
        client.verify(credential).await
    })?;
    let file = auth::store(&host, &a.username, &password)?;
    wso2img::progress::message(&format!(
        "logged in to {host} as {}; credential stored in {}",
        a.username,
        file.display()
    ));
    Ok(())
}

/// Runs `logout`: removes the registry's credential from the Docker config file.
pub fn logout(_g: &Global, a: LogoutArgs) -> Result<()> {
    let host = host(&a.registry)?;
    match auth::erase(&host)? {
        Some(file) => wso2img::progress::message(&format!("removed the credential for {host} from {}", file.display())),
        None => wso2img::progress::message(&format!("no credential for {host} was stored")),
    }
    Ok(())
}
