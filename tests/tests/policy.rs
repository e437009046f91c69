//! The command allowlist tried as an attacker would, against a real mcp-server: code
//! smuggled in through variables (a preloaded shared object, Python's sitecustomize,
//! Node's --require, bash's BASH_ENV, an envFile carrying one), arguments around a
//! pinned entry, working directories outside the jail, and random configs. Every
//! attack leaves a marker file if it runs, so "refused" is checked by what did not
//! happen as well as by the answer; the same attacks with the rules turned off leave
//! their markers, which shows each one is real.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mcp_jobs_e2e::{assert_refused, fixture, server_everything, wait_for, McpServer, API_KEY};
use reqwest::blocking::Client;
use serde_json::{json, Value};

/// A directory of attack material: scripts and libraries that each touch a marker
/// when they run, and a server script (`server.sh`) that logs every start and then
/// runs the fixture MCP server.
struct Arsenal {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Arsenal {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
        let write = |name: &str, text: String| std::fs::write(root.join(name), text).expect(name);
        let marker = |name: &str| root.join("markers").join(name).display().to_string();
        std::fs::create_dir_all(root.join("markers")).expect("markers dir");
        std::fs::create_dir_all(root.join("py")).expect("py dir");
        write(
            "server.sh",
            format!(
                "pwd -P >> {spawned}\nexec {fixture}\n",
                spawned = root.join("spawned").display(),
                fixture = fixture()
            ),
        );
        write(
            "other.sh",
            format!("touch {}\nexec {}\n", marker("other-script"), fixture()),
        );
        write("bashenv.sh", format!("touch {}\n", marker("bash-env")));
        write(
            "py/sitecustomize.py",
            format!("open({:?}, 'w').close()\n", marker("pythonpath")),
        );
        write(
            "require.js",
            format!(
                "require('fs').writeFileSync({:?}, '')\n",
                marker("node-options")
            ),
        );
        write(
            "preload.c",
            format!(
                "#include <stdio.h>\n__attribute__((constructor)) static void run(void) {{ FILE *f = fopen({:?}, \"w\"); if (f) fclose(f); }}\n",
                marker("ld-preload")
            ),
        );
        let compiled = Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(root.join("preload.so"))
            .arg(root.join("preload.c"))
            .status()
            .expect("cc (gcc) to build the preload library");
        assert!(compiled.success(), "compiling preload.so");
        std::fs::create_dir_all(root.join("env")).expect("env dir");
        write(
            "env/preload.env",
            format!("TZ=UTC\nLD_PRELOAD={}\n", root.join("preload.so").display()),
        );
        write(
            "env/leak.env",
            "TZ=UTC\nSTOLEN=${MCP_API_KEYS}\n".to_owned(),
        );
        Self { _dir: dir, root }
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn marker_exists(&self, name: &str) -> bool {
        self.root.join("markers").join(name).exists()
    }

    /// The working directories `server.sh` was started in, one line per start.
    fn spawned(&self) -> Vec<String> {
        std::fs::read_to_string(self.root.join("spawned"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn server_sh(&self) -> Value {
        json!({ "command": "bash", "args": [self.path("server.sh")] })
    }

    /// mcp-server allowing `mcp-server-time`, server-everything under node, and bash
    /// only as `bash <arsenal>/server.sh`, with `env` on top.
    fn mcp_server(&self, env: &[(&str, &str)]) -> McpServer {
        let entry = server_everything()["args"][0]
            .as_str()
            .expect("entry path")
            .to_owned();
        let commands = format!(
            "mcp-server-time,node {entry},bash {}",
            self.path("server.sh")
        );
        let env_dir = self.path("env");
        let mut all = vec![
            ("MCP_ALLOWED_COMMANDS", commands.as_str()),
            ("MCP_ENV_DIR", env_dir.as_str()),
        ];
        all.extend_from_slice(env);
        McpServer::start(&all)
    }

    /// Each attack: its name (the marker it leaves), the variable it uses, and a config.
    fn env_attacks(&self) -> Vec<(&'static str, &'static str, Value)> {
        let mut node = server_everything();
        node["env"] = json!({ "NODE_OPTIONS": format!("--require {}", self.path("require.js")) });
        vec![
            (
                "ld-preload",
                "LD_PRELOAD",
                json!({ "command": "mcp-server-time", "env": { "LD_PRELOAD": self.path("preload.so") } }),
            ),
            (
                "pythonpath",
                "PYTHONPATH",
                json!({ "command": "mcp-server-time", "env": { "PYTHONPATH": self.path("py") } }),
            ),
            ("node-options", "NODE_OPTIONS", node),
            (
                "bash-env",
                "BASH_ENV",
                json!({ "command": "bash", "args": [self.path("server.sh")], "env": { "BASH_ENV": self.path("bashenv.sh") } }),
            ),
        ]
    }
}

fn list_tools(server: &McpServer, config: &Value) -> Value {
    server.call("list_tools", json!({ "serverName": "s", "config": config }))
}

/// The same call over the REST gateway: its status and body.
fn list_tools_rest(server: &McpServer, config: &Value) -> (u16, Value) {
    let response = Client::new()
        .post(server.endpoint("/tools/list_tools"))
        .bearer_auth(API_KEY)
        .json(&json!({ "arguments": { "serverName": "s", "config": config } }))
        .send()
        .expect("POST /tools/list_tools");
    let status = response.status().as_u16();
    (status, response.json().expect("a JSON body"))
}

#[test]
fn variables_that_load_code_are_refused_and_nothing_runs() {
    let arsenal = Arsenal::new();
    let server = arsenal.mcp_server(&[]);
    for (marker, variable, config) in arsenal.env_attacks() {
        assert_refused(
            &list_tools(&server, &config),
            &format!("env variable {variable:?} is refused"),
        );
        let (status, body) = list_tools_rest(&server, &config);
        assert_eq!(status, 403, "REST refuses it too: {body:#}");
        assert!(
            body.to_string().contains(variable),
            "REST names {variable}: {body:#}"
        );
        assert!(!arsenal.marker_exists(marker), "{marker} ran");
    }
    let from_file = json!({ "command": "mcp-server-time", "envFile": "preload.env" });
    assert_refused(
        &list_tools(&server, &from_file),
        "env variable \"LD_PRELOAD\" (from envFile \"preload.env\") is refused",
    );
    let leak = json!({ "command": "mcp-server-time", "envFile": "leak.env" });
    assert_refused(
        &list_tools(&server, &leak),
        "envFile \"leak.env\" line 2 expands a variable",
    );
    assert!(arsenal.spawned().is_empty(), "nothing was started");
    assert!(!arsenal.marker_exists("ld-preload"));

    // Harmless variables still pass, and the children they configure work.
    let time =
        json!({ "command": "mcp-server-time", "env": { "TZ": "UTC", "PYTHONUNBUFFERED": "1" } });
    assert!(list_tools(&server, &time)["result"].is_object());
}

#[test]
fn with_the_rules_off_the_same_attacks_run_which_shows_they_are_real() {
    let arsenal = Arsenal::new();
    let server = arsenal.mcp_server(&[("MCP_ALLOWED_ENV", "*")]);
    assert!(
        server.process.output().contains("MCP_ALLOWED_ENV=*"),
        "turning the rules off is logged as a warning"
    );
    for (marker, _, config) in arsenal.env_attacks() {
        list_tools(&server, &config);
        wait_for(&format!("{marker} to run"), Duration::from_secs(30), || {
            arsenal.marker_exists(marker).then_some(())
        });
    }
}

#[test]
fn an_allowed_env_list_is_strict() {
    let arsenal = Arsenal::new();
    let server = arsenal.mcp_server(&[("MCP_ALLOWED_ENV", "TZ,APP_*")]);
    let allowed = json!({ "command": "mcp-server-time", "env": { "TZ": "UTC", "APP_MODE": "x" } });
    assert!(list_tools(&server, &allowed)["result"].is_object());
    let unlisted = json!({ "command": "mcp-server-time", "env": { "LANG": "C" } });
    assert_refused(
        &list_tools(&server, &unlisted),
        "env variable \"LANG\" is refused: not on MCP_ALLOWED_ENV",
    );
}

#[test]
fn pinned_arguments_are_matched_exactly() {
    let arsenal = Arsenal::new();
    let server = arsenal.mcp_server(&[]);
    let server_sh = arsenal.path("server.sh");
    let refused = [
        json!([arsenal.path("other.sh")]),
        json!([
            "-c",
            format!("touch {}/markers/other-script", arsenal.root.display())
        ]),
        json!(["--rcfile", arsenal.path("other.sh"), server_sh]),
        json!([format!("{server_sh}x")]),
        json!(["-x", server_sh]),
        json!([]),
    ];
    for args in refused {
        assert_refused(
            &list_tools(&server, &json!({ "command": "bash", "args": args })),
            &format!("command \"bash\" is allowed only with pinned leading arguments (\"bash {server_sh}\")"),
        );
    }
    assert_refused(
        &list_tools(
            &server,
            &json!({ "command": "/bin/bash", "args": [server_sh] }),
        ),
        "command \"/bin/bash\" is not allowed",
    );
    assert!(arsenal.spawned().is_empty(), "nothing was started");
    assert!(!arsenal.marker_exists("other-script"));

    // The pinned form works, and arguments after it are the server's own.
    for config in [
        arsenal.server_sh(),
        json!({ "command": "bash", "args": [server_sh, "--extra"] }),
    ] {
        let listed = list_tools(&server, &config);
        assert!(
            listed["result"]["structuredContent"]["tools"].is_array(),
            "{listed:#}"
        );
    }
    assert_eq!(arsenal.spawned().len(), 2);
}

#[test]
fn bare_launchers_are_warned_about_at_start() {
    let server = McpServer::start(&[(
        "MCP_ALLOWED_COMMANDS",
        "uvx,uvx mcp-server-time,mcp-server-time",
    )]);
    let log = server.process.output();
    assert!(
        log.contains("allows \"uvx\" with any arguments, which allows any code"),
        "{log}"
    );
    assert!(
        !log.contains("\"mcp-server-time\" with any arguments"),
        "{log}"
    );
}

#[test]
fn cwd_is_jailed_in_the_work_dir() {
    let arsenal = Arsenal::new();
    let with_cwd = |cwd: &str| {
        let mut config = arsenal.server_sh();
        config["cwd"] = json!(cwd);
        config
    };
    let unjailed = arsenal.mcp_server(&[]);
    assert_refused(
        &list_tools(&unjailed, &with_cwd("sub")),
        "cwd \"sub\" is refused: MCP_WORK_DIR is not set",
    );

    let work = arsenal.root.join("work");
    std::fs::create_dir_all(work.join("sub")).expect("work dirs");
    std::os::unix::fs::symlink(&arsenal.root, work.join("out")).expect("symlink out");
    std::os::unix::fs::symlink(work.join("sub"), work.join("in")).expect("symlink in");
    let work_dir = work.display().to_string();
    let server = arsenal.mcp_server(&[("MCP_WORK_DIR", &work_dir)]);
    for escape in [
        "..",
        "out",
        "out/markers",
        "sub/../..",
        "/tmp",
        "/",
        "in/../..",
    ] {
        assert_refused(
            &list_tools(&server, &with_cwd(escape)),
            &format!("cwd {escape:?} is outside MCP_WORK_DIR"),
        );
    }
    assert_refused(
        &list_tools(&server, &with_cwd("missing")),
        "cwd \"missing\" cannot be used",
    );
    assert!(arsenal.spawned().is_empty(), "nothing was started");

    for inside in ["sub", "in", work.join("sub").to_str().expect("utf-8")] {
        let listed = list_tools(&server, &with_cwd(inside));
        assert!(
            listed["result"]["structuredContent"]["tools"].is_array(),
            "{inside}: {listed:#}"
        );
    }
    let sub = work.join("sub").display().to_string();
    assert_eq!(
        arsenal.spawned(),
        [sub.as_str()],
        "the three spellings resolve to one directory, so one child serves them"
    );
}

/// A small deterministic generator, so a failing case can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        &items[((self.0 >> 33) % items.len() as u64) as usize]
    }
}

#[test]
fn random_configs_never_start_what_the_policy_refuses() {
    let arsenal = Arsenal::new();
    let work = arsenal.root.join("work");
    std::fs::create_dir_all(work.join("sub")).expect("work dirs");
    let server = arsenal.mcp_server(&[("MCP_WORK_DIR", work.to_str().expect("utf-8"))]);
    let server_sh = arsenal.path("server.sh");
    let other_sh = arsenal.path("other.sh");
    let arg_choices: [&[&str]; 6] = [
        &[&server_sh],
        &[&server_sh, "x"],
        &[&other_sh],
        &["-c", "exit 0"],
        &["--norc", &server_sh],
        &[],
    ];
    let env_choices = [
        json!({}),
        json!({ "BASH_ENV": arsenal.path("bashenv.sh") }),
        json!({ "LD_PRELOAD": arsenal.path("preload.so") }),
        json!({ "PATH": arsenal.path("py") }),
        json!({ "APP_SETTING": "on" }),
    ];
    let cwd_choices = [None, Some("sub"), Some(".."), Some("/tmp")];
    let mut random = Lcg(20261201);
    let mut expected_starts = 0;
    for case in 0..120 {
        let args = random.pick(&arg_choices).to_vec();
        let env = random.pick(&env_choices).clone();
        let cwd = *random.pick(&cwd_choices);
        // A value of its own per case makes every allowed config a new child.
        let mut env = env.as_object().cloned().unwrap_or_default();
        env.insert("CASE".into(), json!(case.to_string()));
        let mut config = json!({ "command": "bash", "args": args, "env": env });
        if let Some(cwd) = cwd {
            config["cwd"] = json!(cwd);
        }
        let allowed = args.first() == Some(&server_sh.as_str())
            && env.keys().all(|k| k == "APP_SETTING" || k == "CASE")
            && matches!(cwd, None | Some("sub"));
        let response = list_tools(&server, &config);
        if allowed {
            expected_starts += 1;
            assert!(
                response["result"].is_object(),
                "case {case} {config}: {response:#}"
            );
        } else {
            assert_eq!(
                response["error"]["data"]["kind"], "refused",
                "case {case} {config}: {response:#}"
            );
        }
        assert_eq!(
            arsenal.spawned().len(),
            expected_starts,
            "case {case}: {config}"
        );
    }
    assert!(expected_starts > 5, "the generator reached allowed configs");
    for marker in ["other-script", "bash-env", "ld-preload"] {
        assert!(!arsenal.marker_exists(marker), "{marker} ran");
    }
}
