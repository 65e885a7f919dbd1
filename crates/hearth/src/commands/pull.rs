//! `hearth pull`: fetch a model into the cache, verify it, print its path.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use hearth_hub::{Cache, HfSpec, Progress, PullStatus};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `hearth pull`.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// model short name (gemma3-270m, smollm2-135m) or HF repo id
    pub model: String,
}

/// Fetches the model (unless already cached and verified) and prints the cached file's
/// absolute path as the last line of stdout.
pub fn run(args: &PullArgs) -> anyhow::Result<()> {
    let cache = Cache::from_env();
    let progress = progress_bar();
    let path = if hearth_hub::find_model(&args.model).is_some() {
        let outcome = cache.pull(&args.model, &progress)?;
        let how = match outcome.status {
            PullStatus::Downloaded => "downloaded and verified",
            PullStatus::Rehashed => "already cached (checksum verified again)",
            _ => "already cached and verified",
        };
        eprintln!("{}: {how}", args.model);
        outcome.path
    } else if let Some(spec) = HfSpec::parse(&args.model) {
        cache.fetch_hf(&spec, &progress)?
    } else {
        // Neither a name nor a repo id: resolve gives the error that lists the names.
        cache.resolve(&args.model, &progress)?
    };
    let path = std::path::absolute(&path)
        .with_context(|| format!("could not make {} absolute", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

/// A progress bar on stderr (bytes, rate, time left) for any command that calls
/// [`hearth_hub::resolve`]. It draws nothing when stderr is not a terminal.
pub fn progress_bar() -> impl Progress {
    BarProgress {
        bar: Mutex::new(None),
    }
}

/// [`Progress`] drawn with indicatif, one bar per phase.
struct BarProgress {
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        // A poisoned lock only means another thread panicked mid-draw: keep drawing.
        let mut guard = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

impl Progress for BarProgress {
    fn begin(&self, what: &str, total_bytes: Option<u64>) {
        let bar = match total_bytes {
            Some(total) => ProgressBar::new(total).with_style(
                style(
                    "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} \
                     {binary_bytes_per_sec} eta {eta}",
                )
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(style(
                "{spinner} {msg} {binary_bytes} {binary_bytes_per_sec}",
            )),
        };
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.with_bar(|slot| {
            if let Some(old) = slot.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, bytes: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.inc(bytes);
            }
        });
    }

    fn end(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }
}
