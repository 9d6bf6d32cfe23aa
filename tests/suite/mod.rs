mod support;

mod docker;
mod errors;
mod golden;
mod outputs;
mod registry;
mod registry_support;
mod reproducible;
