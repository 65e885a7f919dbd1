//! Prints a GGUF file's metadata (long arrays summarised) and tensor directory.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: gguf_dump FILE")?;
    let f = hearth_gguf::GgufFile::open(&path)?;
    for (k, v) in f.metadata() {
        match v {
            hearth_gguf::Value::Array(a) if a.len() > 8 => println!("{k}: [{} items]", a.len()),
            hearth_gguf::Value::String(s) if s.len() > 200 => println!("{k}: {:?}...", &s[..200]),
            _ => println!("{k}: {v:?}"),
        }
    }
    for t in f.tensors() {
        println!("{} {:?} {}", t.name, t.dims, t.dtype);
    }
    Ok(())
}
