//! Every `docker run` argv the runner can generate, one argument per line, pinned as snapshots.
//!
//! Each case builds a host (environment and start directory) and a command line, resolves them
//! as the binary does, and snapshots the dry-run argv of one eval. Temp paths and the run id
//! vary between runs and are filtered.

use std::path::Path;

use clap::Parser;
use evals_cli::args::{Cli, Command};
use evals_cli::host::Host;
use evals_cli::settings::Settings;

/// One scenario: a host environment, files in the start directory, and extra flags.
struct Case<'a> {
    env: &'a [(&'a str, &'a str)],
    files: &'a [&'a str],
    flags: &'a [&'a str],
    model: &'a str,
}

const DEFAULT: Case<'static> = Case {
    env: &[],
    files: &[],
    flags: &[],
    model: "openai/gpt-4.1-mini",
};

/// The argv of the case's first eval, one argument per line, and the names passed by env.
fn argv(case: &Case<'_>) -> String {
    argv_in(case, &tempfile::tempdir().unwrap().path().join("repo"))
}

fn argv_in(case: &Case<'_>, repo: &Path) -> String {
    let root = repo.parent().unwrap();
    let tmp = root.join("tmp");
    std::fs::create_dir_all(repo.join("evals/basics/01-hello")).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(repo.join("evals/basics/01-hello/requirements.yaml"), "").unwrap();
    for file in case.files {
        let path = repo.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{}").unwrap();
    }
    let mut env: Vec<(String, String)> = vec![("TMPDIR".into(), tmp.display().to_string())];
    env.extend(case.env.iter().map(|(k, v)| {
        (
            k.to_string(),
            v.replace("{root}", &root.display().to_string()),
        )
    }));
    let host = Host {
        env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        cwd: repo.into(),
    };

    let flags: Vec<String> = case
        .flags
        .iter()
        .map(|flag| flag.replace("{root}", &root.display().to_string()))
        .collect();
    let cli = Cli::try_parse_from(
        ["evals-runner", "run", "--dry-run", "--model", case.model]
            .into_iter()
            .chain(flags.iter().map(String::as_str)),
    )
    .unwrap();
    let Command::Run(args) = cli.command else {
        unreachable!("the command line says run")
    };
    let settings = Settings::resolve(&args.model, &args.common, &host).unwrap();
    let evals = evals_pipeline::discover(repo, &settings.pattern).unwrap();
    let line = evals_cli::dry_run::lines(&settings, &evals)
        .unwrap()
        .remove(0);

    let text =
        line.argv.unwrap_or_default().join("\n") + "\n--- env by name:\n" + &line.env.join("\n");
    let root = root.canonicalize().unwrap().display().to_string();
    text.replace(&root, "[ROOT]")
        .replace(&settings.run_id, "[RUN]")
}

macro_rules! snapshot {
    ($name:ident, $case:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(argv(&$case));
        }
    };
}

snapshot!(default_provider_model, DEFAULT);
snapshot!(
    host_auth_json_changes_nothing_in_argv,
    Case {
        env: &[("HOME", "{root}/home")],
        files: &["../home/.local/share/opencode/auth.json"],
        ..DEFAULT
    }
);
snapshot!(
    opencode_json_is_mounted_read_only,
    Case {
        files: &["opencode.json"],
        ..DEFAULT
    }
);
snapshot!(
    opencode_jsonc_keeps_its_name,
    Case {
        files: &["opencode.jsonc"],
        ..DEFAULT
    }
);
snapshot!(
    opencode_json_wins_over_jsonc,
    Case {
        files: &["opencode.json", "opencode.jsonc"],
        ..DEFAULT
    }
);
snapshot!(
    opencode_config_flag,
    Case {
        files: &["conf/team.jsonc"],
        flags: &["--opencode-config", "conf/team.jsonc"],
        ..DEFAULT
    }
);
snapshot!(
    host_tmpdir_holds_every_source,
    Case {
        files: &["opencode.json", "../shared-tmp/.keep"],
        flags: &["--host-tmpdir", "{root}/shared-tmp"],
        ..DEFAULT
    }
);
snapshot!(
    extra_prefixes_forward_more,
    Case {
        env: &[
            (
                "OPENCODE_DOCKER_EXTRA_ENV_PREFIXES",
                "MY_, DEEPSEEK_API_KEY"
            ),
            ("MY_PROVIDER_KEY", "k1"),
            ("DEEPSEEK_API_KEY", "k2"),
            ("OPENAI_API_KEY", "k3"),
            ("GITHUB_TOKEN", "k4")
        ],
        ..DEFAULT
    }
);
snapshot!(
    agent_logs_start_the_server_at_debug,
    Case {
        flags: &["--agent-logs"],
        ..DEFAULT
    }
);
snapshot!(
    verbose_implies_agent_logs,
    Case {
        flags: &["--verbose"],
        ..DEFAULT
    }
);
snapshot!(
    server_log_level_from_env,
    Case {
        env: &[("OPENCODE_SERVER_LOG_LEVEL", "WARN")],
        ..DEFAULT
    }
);
snapshot!(
    server_print_logs_from_env,
    Case {
        env: &[("OPENCODE_SERVER_PRINT_LOGS", "1")],
        ..DEFAULT
    }
);
snapshot!(
    container_log_streaming_off_changes_nothing_in_argv,
    Case {
        env: &[("OPENCODE_STREAM_CONTAINER_LOGS", "0")],
        ..DEFAULT
    }
);
snapshot!(
    mock_models_use_host_networking,
    Case {
        model: "mock/echo",
        ..DEFAULT
    }
);
snapshot!(
    host_networking_on_request,
    Case {
        flags: &["--network", "host"],
        ..DEFAULT
    }
);
snapshot!(
    bridge_networking_on_request,
    Case {
        flags: &["--network", "bridge"],
        ..DEFAULT
    }
);
snapshot!(
    other_image_and_docker_client,
    Case {
        flags: &["--image", "my/opencode:dev", "--docker", "/opt/bin/docker"],
        ..DEFAULT
    }
);

#[test]
fn awkward_paths_are_quoted_for_dockers_mount_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("my repo, \"v2\": ünïcødé");
    let case = Case {
        files: &["opencode.json"],
        ..DEFAULT
    };
    insta::assert_snapshot!(argv_in(&case, &repo));
}

#[test]
fn noop_starts_no_container() {
    assert_eq!(
        argv(&Case {
            model: "noop",
            ..DEFAULT
        }),
        "\n--- env by name:\n"
    );
}

#[test]
fn secret_values_never_reach_the_argv() {
    let secrets = [
        ("OPENAI_API_KEY", "sk-proj-AAAAsecretOPENAI"),
        ("ANTHROPIC_API_KEY", "sk-ant-secretANTHROPIC"),
        ("GOOGLE_API_KEY", "AIzaSecretGOOGLE"),
        ("GEMINI_API_KEY", "secretGEMINI"),
        ("AZURE_OPENAI_KEY", "secretAZURE"),
        ("PARASAIL_API_KEY", "secretPARASAIL"),
        ("CLOUDFLARE_API_TOKEN", "secretCLOUDFLARE"),
        ("OPENCODE_API_KEY", "secretOPENCODE"),
        ("MY_PROVIDER_KEY", "secretMY"),
        ("OPENCODE_DOCKER_EXTRA_ENV_PREFIXES", "MY_"),
        ("OPENCODE_SERVER_PASSWORD", "secretHOSTPASSWORD"),
        ("GITHUB_TOKEN", "ghp_secretGITHUB"),
    ];
    let text = argv(&Case {
        env: &secrets,
        ..DEFAULT
    });
    let (argv, env) = text.split_once("--- env by name:").unwrap();
    for (name, _) in &secrets[..9] {
        assert!(
            argv.contains(&format!("--env\n{name}\n")),
            "{name} is not forwarded"
        );
        assert!(env.contains(name));
    }
    for (name, value) in secrets
        .iter()
        .filter(|(name, _)| !name.ends_with("_PREFIXES"))
    {
        assert!(
            !text.contains(value),
            "the value of {name} reached the argv"
        );
    }
    assert!(!text.contains("GITHUB_TOKEN"));
    assert_eq!(
        argv.matches("OPENCODE_SERVER_PASSWORD").count(),
        1,
        "only the runner's own"
    );
}
