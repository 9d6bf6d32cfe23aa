mod support;

mod docker;
mod errors;
mod golden;
mod outputs;
mod reproducible;
