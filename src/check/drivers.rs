//! JDBC drivers: WSO2 images ship none since 3.2.0, so a `deployment.toml`
//! that names a database type needs a jar that provides its driver.

use crate::wso2::checks::CheckedFile;

/// A database type of `deployment.toml` and its driver.
struct Driver {
    /// The `type` value.
    db: &'static str,
    /// Artifact ids (or jar name prefixes) that provide it.
    artifacts: &'static [&'static str],
    /// The usual coordinates, for the warning.
    coordinates: &'static str,
}

const DRIVERS: [Driver; 5] = [
    Driver {
        db: "mysql",
        artifacts: &["mysql-connector-j", "mysql-connector-java", "mariadb-java-client"],
        coordinates: "com.mysql:mysql-connector-j",
    },
    Driver { db: "postgre", artifacts: &["postgresql"], coordinates: "org.postgresql:postgresql" },
    Driver { db: "mssql", artifacts: &["mssql-jdbc", "sqljdbc"], coordinates: "com.microsoft.sqlserver:mssql-jdbc" },
    Driver { db: "oracle", artifacts: &["ojdbc"], coordinates: "com.oracle.database.jdbc:ojdbc11" },
    Driver { db: "db2", artifacts: &["jcc", "db2jcc"], coordinates: "com.ibm.db2:jcc" },
];

/// One warning per database type that no jar provides a driver for.
/// `databases` are (file, table, type) from the configuration checks.
pub fn missing(databases: &[(String, String, String)], jars: &[CheckedFile]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (file, table, ty) in databases {
        let Some(d) = DRIVERS.iter().find(|d| d.db == ty) else { continue };
        if seen.contains(&d.db) {
            continue;
        }
        seen.push(d.db);
        let provided = jars.iter().filter_map(|j| j.coords.as_ref()).any(|c| {
            let a = c.artifact.to_ascii_lowercase();
            d.artifacts
                .iter()
                .any(|p| a == *p || (a.starts_with(p) && a[p.len()..].chars().all(|c| c.is_ascii_digit())))
        });
        if !provided {
            out.push(format!(
                "{file}: [{table}] type = \"{ty}\" but no jar provides its JDBC driver (WSO2 images ship none); add \"{}:VERSION\" to [maven] jars or its jar to jars/",
                d.coordinates
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LayerKind;
    use crate::wso2::jar::coords_from_name;

    fn jar(name: &str) -> CheckedFile {
        CheckedFile {
            kind: LayerKind::Jars,
            label: format!("jars/{name}.jar"),
            rel: format!("{name}.jar"),
            path: name.into(),
            coords: Some(coords_from_name(name)),
            keystore: None,
        }
    }

    #[test]
    fn a_missing_driver_is_named() {
        let dbs = vec![
            ("d.toml".to_string(), "database.apim_db".to_string(), "mysql".to_string()),
            ("d.toml".to_string(), "database.shared_db".to_string(), "mysql".to_string()),
            ("d.toml".to_string(), "database.x".to_string(), "h2".to_string()),
        ];
        let w = missing(&dbs, &[jar("acme-1.0")]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("[database.apim_db] type = \"mysql\"") && w[0].contains("com.mysql:mysql-connector-j"));
        assert!(missing(&dbs, &[jar("mysql-connector-j-8.4.0")]).is_empty());
        let ora = vec![("d".to_string(), "database.apim_db".to_string(), "oracle".to_string())];
        assert!(missing(&ora, &[jar("ojdbc11-23.3.0.23.09")]).is_empty());
        assert_eq!(missing(&ora, &[jar("postgresql-42.7.3")]).len(), 1);
    }
}
