//! Which programs jobs may start, and with which leading arguments. An entry is a
//! command, optionally followed by the arguments it must start with: `uvx mcp-server-time`
//! allows `uvx` only as `uvx mcp-server-time …`. A launcher or interpreter allowed
//! bare runs whatever its arguments say (`uvx --from <any package>`, `node -e …`), so
//! those entries are reported for a warning at start.

use std::fmt;

/// One `MCP_ALLOWED_COMMANDS` entry: a command and the arguments a job's must start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRule {
    pub command: String,
    pub pinned_args: Vec<String>,
}

impl CommandRule {
    fn allows(&self, command: &str, args: &[String]) -> bool {
        self.command == command && args.starts_with(&self.pinned_args)
    }
}

impl fmt::Display for CommandRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.command)?;
        for arg in &self.pinned_args {
            write!(f, " {arg}")?;
        }
        Ok(())
    }
}

/// `MCP_ALLOWED_COMMANDS`: comma-separated entries, each a command and its pinned
/// arguments separated by spaces; `*` alone allows any command with any arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandAllowlist {
    Any,
    Only(Vec<CommandRule>),
}

/// Why a command was not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandRefusal {
    /// No entry names the command.
    NotListed,
    /// Entries name it, each with arguments the job's do not start with.
    ArgumentsNotPinned { allowed: Vec<String> },
}

impl CommandAllowlist {
    pub fn parse(list: &str) -> Self {
        let mut rules = Vec::new();
        for entry in list.split(',') {
            let mut words = entry.split_whitespace().map(str::to_owned);
            let Some(command) = words.next() else {
                continue;
            };
            if command == "*" {
                return Self::Any;
            }
            rules.push(CommandRule {
                command,
                pinned_args: words.collect(),
            });
        }
        Self::Only(rules)
    }

    pub fn check(&self, command: &str, args: &[String]) -> Result<(), CommandRefusal> {
        let Self::Only(rules) = self else {
            return Ok(());
        };
        if rules.iter().any(|rule| rule.allows(command, args)) {
            return Ok(());
        }
        let allowed: Vec<String> = rules
            .iter()
            .filter(|rule| rule.command == command)
            .map(ToString::to_string)
            .collect();
        if allowed.is_empty() {
            Err(CommandRefusal::NotListed)
        } else {
            Err(CommandRefusal::ArgumentsNotPinned { allowed })
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Self::Only(rules) if rules.is_empty())
    }

    /// Entries that let a job run code of its choosing: interpreters, shells and
    /// launchers allowed without pinned arguments.
    pub fn unpinned_launchers(&self) -> Vec<&str> {
        match self {
            Self::Any => Vec::new(),
            Self::Only(rules) => rules
                .iter()
                .filter(|rule| rule.pinned_args.is_empty() && is_launcher(&rule.command))
                .map(|rule| rule.command.as_str())
                .collect(),
        }
    }
}

/// Programs whose arguments (or stdin) say what code they run. Matched on the file
/// name with any version suffix dropped, so `/usr/bin/python3.11` is `python`.
const LAUNCHERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "fish",
    "csh",
    "tcsh",
    "busybox",
    "env",
    "python",
    "pypy",
    "node",
    "nodejs",
    "deno",
    "bun",
    "npx",
    "npm",
    "pnpm",
    "pnpx",
    "yarn",
    "uv",
    "uvx",
    "pipx",
    "pip",
    "perl",
    "ruby",
    "php",
    "java",
    "lua",
    "luajit",
    "rscript",
    "tclsh",
    "wish",
    "pwsh",
    "powershell",
    "docker",
    "podman",
    "sudo",
    "doas",
    "su",
    "nohup",
    "xargs",
    "timeout",
    "nice",
    "setsid",
    "stdbuf",
    "chroot",
    "strace",
    "gdb",
    "ssh",
];

fn is_launcher(command: &str) -> bool {
    let name = command.rsplit('/').next().unwrap_or(command);
    let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    LAUNCHERS.contains(&name.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn entries_pin_leading_arguments_exactly() {
        let list = CommandAllowlist::parse(
            " mcp-server-time, uvx mcp-server-time ,npx -y @modelcontextprotocol/server-everything,,",
        );
        assert_eq!(list.check("mcp-server-time", &args(&["--x"])), Ok(()));
        assert_eq!(list.check("uvx", &args(&["mcp-server-time"])), Ok(()));
        assert_eq!(
            list.check(
                "uvx",
                &args(&["mcp-server-time", "--local-timezone", "UTC"])
            ),
            Ok(()),
            "arguments after the pinned ones are the tool's own"
        );
        let pinned_uvx = Err(CommandRefusal::ArgumentsNotPinned {
            allowed: vec!["uvx mcp-server-time".into()],
        });
        for refused in [
            &[][..],
            &["--from", "evil", "mcp-server-time"][..],
            &["mcp-server-time@6.6.6"][..],
            &["mcp-server-tim"][..],
            &["mcp-server-time-evil"][..],
            &["evil"][..],
        ] {
            assert_eq!(list.check("uvx", &args(refused)), pinned_uvx, "{refused:?}");
        }
        assert_eq!(
            list.check(
                "npx",
                &args(&["-y", "@modelcontextprotocol/server-everything", "stdio"])
            ),
            Ok(())
        );
        assert!(list
            .check("npx", &args(&["@modelcontextprotocol/server-everything"]))
            .is_err());
        assert_eq!(
            list.check("/usr/bin/mcp-server-time", &[]),
            Err(CommandRefusal::NotListed),
            "a path is not the bare name"
        );
        assert_eq!(
            list.check("sh", &args(&["-c", "id"])),
            Err(CommandRefusal::NotListed)
        );
        assert_eq!(CommandAllowlist::parse("a b,*"), CommandAllowlist::Any);
        assert!(CommandAllowlist::parse(" , ").is_empty());
    }

    #[test]
    fn bare_launchers_are_reported() {
        let list = CommandAllowlist::parse(
            "uvx,uvx mcp-server-time,/usr/bin/python3.11,node,mcp-server-time,/opt/bin/tool",
        );
        assert_eq!(
            list.unpinned_launchers(),
            ["uvx", "/usr/bin/python3.11", "node"]
        );
    }
}
