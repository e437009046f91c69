//! A property test of the policy: random stdio configs, mixing allowed and refused
//! commands, arguments, variables and working directories, are resolved (that is,
//! would be spawned) exactly when an independent reading of the rules allows them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mcp_jobs_contract::{ServerConfig, StdioServer};
use mcp_jobs_upstream::{Allowlist, CommandAllowlist, EnvRules, Policy, Target};
use proptest::prelude::*;

const COMMANDS: &[&str] = &[
    "mcp-server-time",
    "uvx",
    "node",
    "sh",
    "/usr/bin/mcp-server-time",
    "python3",
];
const ARGS: &[&str] = &[
    "mcp-server-time",
    "server.js",
    "--from",
    "evil",
    "-e",
    "-y",
    "x\0y",
];
/// Names a job may set by default, and names it may not (loaders, interpreters,
/// launchers, config redirection, or not a portable name at all).
const HARMLESS: &[&str] = &[
    "TZ",
    "API_KEY",
    "LANG",
    "PYTHONUNBUFFERED",
    "NODE_ENV",
    "LDAP_URL",
];
const REFUSED: &[&str] = &[
    "LD_PRELOAD",
    "ld_preload",
    "LD_AUDIT",
    "DYLD_INSERT_LIBRARIES",
    "PYTHONPATH",
    "PYTHONWARNINGS",
    "NODE_OPTIONS",
    "npm_config_registry",
    "UV_INDEX_URL",
    "PATH",
    "BASH_ENV",
    "ENV",
    "PERL5OPT",
    "RUBYOPT",
    "JAVA_TOOL_OPTIONS",
    "GCONV_PATH",
    "HOME",
    "GIT_CONFIG_COUNT",
    "A=B",
    "BASH_FUNC_f%%",
    "",
];
const CWDS: &[&str] = &[
    "sub",
    "in",
    "..",
    "/tmp",
    "out",
    "missing",
    "sub/../..",
    "/",
];

fn policy(work_dir: &Path) -> Policy {
    Policy {
        allowed_commands: CommandAllowlist::parse(
            "mcp-server-time, uvx mcp-server-time, node server.js",
        ),
        allowed_env: EnvRules::parse(None),
        env_dir: None,
        work_dir: Some(work_dir.to_owned()),
        allowed_remote_hosts: Allowlist::parse(""),
        inherited_env: vec!["PATH".into()],
    }
}

/// The rules, read independently of the policy's code.
fn should_allow(config: &StdioServer) -> bool {
    let first = config.args.first().map(String::as_str);
    let command_ok = match config.command.as_str() {
        "mcp-server-time" => true,
        "uvx" => first == Some("mcp-server-time"),
        "node" => first == Some("server.js"),
        _ => false,
    };
    let args_ok = config.args.iter().all(|a| !a.contains('\0'));
    let env_ok = config
        .env
        .iter()
        .all(|(name, value)| HARMLESS.contains(&name.as_str()) && !value.contains('\0'));
    let cwd_ok = matches!(config.cwd.as_deref(), None | Some("sub" | "in"));
    command_ok && args_ok && env_ok && cwd_ok
}

fn stdio_config() -> impl Strategy<Value = StdioServer> {
    let name = prop_oneof![
        proptest::sample::select(HARMLESS),
        proptest::sample::select(REFUSED)
    ];
    let value = prop_oneof![Just("v".to_owned()), Just("v\0w".to_owned())];
    (
        proptest::sample::select(COMMANDS),
        proptest::collection::vec(proptest::sample::select(ARGS), 0..4),
        proptest::collection::btree_map(name, value, 0..4),
        proptest::option::of(proptest::sample::select(CWDS)),
    )
        .prop_map(|(command, args, env, cwd)| StdioServer {
            command: command.to_owned(),
            args: args.into_iter().map(str::to_owned).collect(),
            env: env
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<BTreeMap<_, _>>(),
            env_file: None,
            cwd: cwd.map(str::to_owned),
        })
}

/// A work dir with `sub/`, `in` (a link to `sub`) and `out` (a link to its parent).
fn work_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let jail = root.path().join("work");
    std::fs::create_dir_all(jail.join("sub")).expect("dirs");
    std::os::unix::fs::symlink(jail.join("sub"), jail.join("in")).expect("symlink");
    std::os::unix::fs::symlink(root.path(), jail.join("out")).expect("symlink");
    (root, jail)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_configs_resolve_only_when_the_rules_allow(config in stdio_config()) {
        let (_root, jail) = work_dir();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let resolved = runtime.block_on(policy(&jail).resolve(&ServerConfig::Stdio(config.clone())));
        prop_assert_eq!(resolved.is_ok(), should_allow(&config), "{:?}: {:?}", config, resolved.as_ref().err());
        if let Ok(resolved) = resolved {
            let Target::Stdio { env, cwd, .. } = resolved.target else {
                panic!("a stdio config resolves to a stdio target");
            };
            for name in env.keys() {
                prop_assert!(name == "PATH" || config.env.contains_key(name), "{} came from nowhere", name);
            }
            if config.env.contains_key("PATH") {
                prop_assert!(false, "a job's PATH was accepted");
            }
            let jail = std::fs::canonicalize(&jail).expect("canonical jail");
            prop_assert!(cwd.is_none_or(|cwd| cwd.starts_with(&jail)));
        }
    }
}
