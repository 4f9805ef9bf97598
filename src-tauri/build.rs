fn main() {
    // tauri-build reads tauri.conf.json from the working directory; ours lives at the repository
    // root, next to icons/ and ui/, so the paths inside it are relative to the root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root).expect("repository root");
    println!("cargo:rerun-if-changed={}", root.join("tauri.conf.json").display());
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new()) {
        panic!("tauri build failed: {e:#}");
    }
}
