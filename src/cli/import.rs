//! `converge import`: read the account, write the desired state, check it as `validate` would.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::args::ImportArgs;
use crate::aws::Aws;
use crate::import::{self, Options};

pub(super) fn import(dir: &Path, args: &ImportArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let (opts, imported) = runtime.block_on(async {
        let aws = Aws::connect(args.region.as_deref().unwrap_or("us-east-1")).await?;
        let account = aws.account(None).await?;
        let opts = Options {
            fleet: args.fleet.clone(),
            region: aws.region.clone(),
            account: Some(account),
            dns_zone: args.dns_zone.as_deref().map(crate::model::dns_name),
            name_prefixes: args.name_prefix.clone(),
            only: args.only.iter().cloned().collect(),
            tags: args.tag.clone(),
            vpc: args.vpc.clone(),
        };
        let (env, live) = aws.read_for_import(&opts).await?;
        Ok::<_, anyhow::Error>((opts.clone(), import::import(&opts, &env, &live)))
    })?;
    // Nothing is overwritten without --force: a second import goes to another folder to compare.
    let existing: Vec<String> = imported.files.keys().filter(|f| dir.join(f).exists()).cloned().collect();
    if !existing.is_empty() && !args.force {
        eprintln!(
            "error: {} already holds {}: nothing was written\n  help: import into another folder (--dir) to compare, or pass --force to overwrite",
            dir.display(),
            existing.join(", ")
        );
        return Ok(ExitCode::from(1));
    }
    for (file, text) in &imported.files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    // What was written must load as any desired state does.
    let loaded = crate::model::load_dir(dir);
    if let Ok(fleet) = &loaded {
        println!("Imported into {} as fleet {}: {}.", dir.display(), opts.fleet, super::words::inventory(fleet));
    }
    for note in &imported.notes {
        println!("  note: {note}");
    }
    match loaded {
        Ok(_) => {
            println!("Next: review the files, then `converge --dir {} plan`: every object it found shows as an adoption.", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!("error: the imported desired state does not validate (a bug in converge import: please report it with the lines above)");
            Ok(ExitCode::from(1))
        }
    }
}
