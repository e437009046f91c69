//! Which environment variables a job may give a child. Some make the loader, a shell or
//! an interpreter run code that the allowed command never named (`LD_PRELOAD`,
//! `PYTHONPATH`, `NODE_OPTIONS`…): were they free, allowing one command would allow
//! anything. By default those are refused; `MCP_ALLOWED_ENV` replaces the default with
//! a strict allowlist, or with `*` for anything.

use super::Allowlist;

/// A variable name, or a prefix when it ends in `*` (`PREFIX_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct NamePattern(String);

impl NamePattern {
    fn matches(&self, name: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.0,
        }
    }

    /// The default denylist matches regardless of case: npm reads `npm_config_*` as
    /// well as `NPM_CONFIG_*`, and a name differing only in case is never a legitimate need.
    fn matches_any_case(&self, name: &str) -> bool {
        NamePattern(self.0.to_ascii_uppercase()).matches(&name.to_ascii_uppercase())
    }
}

/// What a job's `env` and `envFile` may set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvRules {
    /// Everything but [`CODE_LOADING_ENV`]: the default.
    RefuseCodeLoading,
    /// Only these names and prefixes (`MCP_ALLOWED_ENV`).
    Only(Vec<String>),
    /// Anything (`MCP_ALLOWED_ENV=*`): the allowlist of commands then promises nothing.
    Any,
}

/// Variables that make a loader, shell, interpreter or package launcher run or fetch
/// code the command did not name, with the reason shown when one is refused.
pub const CODE_LOADING_ENV: &[(&str, &str)] = &[
    ("LD_*", "the dynamic loader loads shared objects it names (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT)"),
    ("DYLD_*", "the macOS dynamic loader loads libraries it names"),
    ("GCONV_PATH", "the C library loads iconv modules from it"),
    ("GLIBC_TUNABLES", "it changes how the C library and loader behave"),
    ("PATH", "it decides which program a command name runs"),
    ("BASH_ENV", "bash runs the file it names before the script"),
    ("ENV", "sh runs the file it names at start"),
    ("BASH_FUNC_*", "bash imports function definitions from it"),
    ("SHELLOPTS", "it turns on shell options (xtrace with PS4 runs commands)"),
    ("BASHOPTS", "it turns on shell options"),
    ("PS4", "a shell expands (and so runs) it when tracing"),
    ("PROMPT_COMMAND", "bash runs it"),
    ("IFS", "it changes how shell scripts split words"),
    ("PYTHONPATH", "Python imports modules (sitecustomize.py) from it"),
    ("PYTHONHOME", "Python loads its standard library from it"),
    ("PYTHONSTARTUP", "Python runs the file it names"),
    ("PYTHONUSERBASE", "Python imports site-packages (and .pth files) from it"),
    ("PYTHONEXECUTABLE", "it changes which interpreter Python reports and re-runs"),
    ("PYTHONPLATLIBDIR", "Python loads its library from it"),
    ("PYTHONWARNINGS", "Python imports the module a warning filter names"),
    ("PYTHONBREAKPOINT", "Python imports and calls the callable it names"),
    ("PYTHONINSPECT", "Python then reads code from stdin after the script"),
    ("VIRTUAL_ENV", "uv and Python tools run the environment it names"),
    ("UV_*", "uv and uvx fetch packages (code) from where it says"),
    ("PIP_*", "pip fetches packages (code) from where it says"),
    ("PIPX_*", "pipx fetches packages (code) from where it says"),
    ("NODE_OPTIONS", "Node.js preloads the modules it names (--require, --import)"),
    ("NODE_PATH", "Node.js resolves modules from it"),
    ("NODE_REPL_EXTERNAL_MODULE", "Node.js loads the module it names"),
    ("NPM_CONFIG_*", "npm and npx take their registry, node options and script shell from it"),
    ("PERL5LIB", "Perl loads modules from it"),
    ("PERLLIB", "Perl loads modules from it"),
    ("PERL5OPT", "Perl takes command-line options (-M modules) from it"),
    ("PERL5DB", "Perl runs it as the debugger"),
    ("RUBYLIB", "Ruby loads libraries from it"),
    ("RUBYOPT", "Ruby takes command-line options (-r libraries) from it"),
    ("GEM_HOME", "Ruby loads gems from it"),
    ("GEM_PATH", "Ruby loads gems from it"),
    ("BUNDLE_GEMFILE", "Bundler loads the Gemfile (Ruby code) it names"),
    ("JAVA_TOOL_OPTIONS", "the JVM takes options (-javaagent) from it"),
    ("_JAVA_OPTIONS", "the JVM takes options (-javaagent) from it"),
    ("JDK_JAVA_OPTIONS", "the java launcher takes options (-javaagent) from it"),
    ("CLASSPATH", "the JVM loads classes from it"),
    ("OPENSSL_CONF", "OpenSSL loads the engines and providers its file names"),
    ("OPENSSL_ENGINES", "OpenSSL loads engines from it"),
    ("OPENSSL_MODULES", "OpenSSL loads providers from it"),
    ("GIT_CONFIG*", "git reads configuration (core.fsmonitor, core.sshCommand run programs) from it"),
    ("GIT_SSH", "git runs the program it names"),
    ("GIT_SSH_COMMAND", "git runs it"),
    ("GIT_ASKPASS", "git runs the program it names"),
    ("GIT_EXEC_PATH", "git runs its sub-commands from it"),
    ("GIT_PROXY_COMMAND", "git runs it"),
    ("GIT_EXTERNAL_DIFF", "git runs it"),
    ("GIT_PAGER", "git runs it"),
    ("GIT_EDITOR", "git runs it"),
    ("GIT_SEQUENCE_EDITOR", "git runs it"),
    ("GIT_TEMPLATE_DIR", "git copies hooks (programs) from it"),
    ("GIT_DIR", "git reads the configuration and hooks of the repository it names"),
    ("EDITOR", "tools run the program it names"),
    ("VISUAL", "tools run the program it names"),
    ("PAGER", "tools run the program it names"),
    ("MANPAGER", "man runs the program it names"),
    ("BROWSER", "tools run the program it names"),
    ("SSH_ASKPASS", "ssh runs the program it names"),
    ("SUDO_ASKPASS", "sudo runs the program it names"),
    ("LESSOPEN", "less runs it"),
    ("LESSCLOSE", "less runs it"),
    ("HOME", "tools read their configuration (.npmrc, pip.conf, .gitconfig, which can name programs to run) from it"),
    ("XDG_CONFIG_HOME", "tools read their configuration (which can name programs to run) from it"),
    ("XDG_CONFIG_DIRS", "tools read their configuration (which can name programs to run) from it"),
];

/// Why a variable was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvRefusal {
    /// Not a portable variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    InvalidName,
    /// On the default denylist, for this reason.
    LoadsCode(&'static str),
    /// `MCP_ALLOWED_ENV` is set and does not name it.
    NotListed,
    /// The value holds a NUL byte, which no environment can carry.
    NulInValue,
}

impl EnvRules {
    /// `None` (unset) keeps the default; `*` allows anything; else a comma-separated
    /// list of names and `PREFIX_*` patterns.
    pub fn parse(list: Option<&str>) -> Self {
        match list.map(Allowlist::parse) {
            None => Self::RefuseCodeLoading,
            Some(Allowlist::Any) => Self::Any,
            Some(Allowlist::Only(entries)) => Self::Only(entries.into_iter().collect()),
        }
    }

    pub fn check(&self, name: &str, value: &str) -> Result<(), EnvRefusal> {
        if !is_portable_name(name) {
            return Err(EnvRefusal::InvalidName);
        }
        if value.contains('\0') {
            return Err(EnvRefusal::NulInValue);
        }
        match self {
            Self::Any => Ok(()),
            Self::Only(entries) => entries
                .iter()
                .any(|e| NamePattern(e.clone()).matches(name))
                .then_some(())
                .ok_or(EnvRefusal::NotListed),
            Self::RefuseCodeLoading => match CODE_LOADING_ENV
                .iter()
                .find(|(pattern, _)| NamePattern((*pattern).to_owned()).matches_any_case(name))
            {
                Some((_, why)) => Err(EnvRefusal::LoadsCode(why)),
                None => Ok(()),
            },
        }
    }
}

fn is_portable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_loading_variables_are_refused_by_default() {
        let rules = EnvRules::parse(None);
        for name in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "LD_AUDIT",
            "ld_preload",
            "DYLD_INSERT_LIBRARIES",
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONSTARTUP",
            "PYTHONUSERBASE",
            "PYTHONWARNINGS",
            "NODE_OPTIONS",
            "NODE_PATH",
            "npm_config_registry",
            "NPM_CONFIG_NODE_OPTIONS",
            "UV_INDEX_URL",
            "PIP_INDEX_URL",
            "BASH_ENV",
            "ENV",
            "PERL5LIB",
            "PERL5OPT",
            "RUBYLIB",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "_JAVA_OPTIONS",
            "JDK_JAVA_OPTIONS",
            "GCONV_PATH",
            "PATH",
            "Path",
            "OPENSSL_CONF",
            "GIT_CONFIG_COUNT",
            "GIT_SSH_COMMAND",
            "HOME",
        ] {
            assert!(
                matches!(rules.check(name, "x"), Err(EnvRefusal::LoadsCode(_))),
                "{name}"
            );
        }
        for name in [
            "TZ",
            "API_TOKEN",
            "LANG",
            "PYTHONUNBUFFERED",
            "NODE_ENV",
            "LDAP_URL",
            "ENVIRONMENT",
        ] {
            assert_eq!(rules.check(name, "x"), Ok(()), "{name}");
        }
    }

    #[test]
    fn names_and_values_must_be_portable() {
        let rules = EnvRules::Any;
        for name in ["", "BASH_FUNC_x%%", "A=B", "1X", "A B", "A\0"] {
            assert_eq!(
                rules.check(name, "x"),
                Err(EnvRefusal::InvalidName),
                "{name:?}"
            );
        }
        assert_eq!(rules.check("A", "x\0y"), Err(EnvRefusal::NulInValue));
        assert_eq!(rules.check("LD_PRELOAD", "x"), Ok(()), "* allows anything");
    }

    #[test]
    fn an_allowlist_is_strict() {
        let rules = EnvRules::parse(Some("TZ, APP_*"));
        assert_eq!(rules.check("TZ", "UTC"), Ok(()));
        assert_eq!(rules.check("APP_TOKEN", "t"), Ok(()));
        assert_eq!(rules.check("tz", "UTC"), Err(EnvRefusal::NotListed));
        assert_eq!(rules.check("LANG", "C"), Err(EnvRefusal::NotListed));
        assert_eq!(rules.check("APPX", "t"), Err(EnvRefusal::NotListed));
        assert_eq!(EnvRules::parse(Some("TZ,*")), EnvRules::Any);
        assert_eq!(EnvRules::parse(Some("")), EnvRules::Only(Vec::new()));
    }
}
