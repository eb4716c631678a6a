//! BrightRun's own folders and files are private to the user whatever the umask: folders
//! 0700 and files 0600. The data dir holds datasets, models and the job database, the config
//! dir may hold tokens, and logs quote prompts, so none of it is for other local users.
//!
//! Files the user asks to be written elsewhere (`models download --to DIR`) do not go
//! through here and keep the umask's permissions.

use std::path::Path;

/// The mode of BrightRun's own folders.
pub const DIR_MODE: u32 = 0o700;
/// The mode of BrightRun's own files.
pub const FILE_MODE: u32 = 0o600;

/// `create_dir_all` with missing folders made 0700, and `dir` itself set to 0700 even when it
/// already existed (homes made by older versions were 0755).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// The async form of [`create_dir_all`].
pub async fn create_dir_all_async(dir: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir).await?;
    set_mode(dir, DIR_MODE)
}

/// Options that create (or truncate) a file with mode 0600 from the start, so no other user
/// can open it in the moment between creation and a later `chmod`.
pub fn file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates (or truncates) `path` as a 0600 file.
pub fn create_file(path: &Path) -> std::io::Result<std::fs::File> {
    let file = file_options().open(path)?;
    // An existing file keeps its old mode through `open`; narrow it.
    restrict_open(&file)?;
    Ok(file)
}

/// The async form of [`create_file`].
pub async fn create_file_async(path: &Path) -> std::io::Result<tokio::fs::File> {
    let file = create_file(path)?;
    Ok(tokio::fs::File::from_std(file))
}

/// Writes `contents` to `path` as a 0600 file.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> std::io::Result<()> {
    use std::io::Write;
    create_file(path)?.write_all(contents.as_ref())
}

/// Narrows a file created by a library that takes no mode (redb, the log appender) to 0600.
pub fn restrict_file(path: &Path) -> std::io::Result<()> {
    set_mode(path, FILE_MODE)
}

fn restrict_open(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_private_even_when_they_existed() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        let fresh = dir.path().join("c/d");
        create_dir_all(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&dir.path().join("c")), 0o700);
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&file, "secret").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret");
    }
}
