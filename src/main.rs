//! The `wso2img` binary: a thin command line over the library.

#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    wso2img::files::install_signal_cleanup();
    cli::main()
}
