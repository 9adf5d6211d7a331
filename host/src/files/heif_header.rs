//! The displayed size of a HEIF (HEIC) image from its `meta` box alone: the primary item's
//! (`pitm`) `ispe`, cropped by its `clap` and turned by its `irot`, the properties found through
//! `ipma`. A file often holds several `ispe` (the coded size padded to whole blocks, a thumbnail,
//! grid tiles), so the largest one, which is all a generic reader looks at, is not the answer:
//! libheif's encoder writes a 1600x1203 photo as a 1600x1204 picture and an identity item.

/// `(width, height)` as displayed, when the header says.
pub fn displayed_size(file: &[u8]) -> Option<(u32, u32)> {
    let meta = child(file, b"meta")?.get(4..)?; // a full box: version and flags first
    let pitm = child(meta, b"pitm")?;
    let primary = if pitm.first()? == &0 { u32::from(be16(pitm, 4)?) } else { be32(pitm, 4)? };
    let iprp = child(meta, b"iprp")?;
    let properties = boxes(child(iprp, b"ipco")?);
    let ipma = child(iprp, b"ipma")?;
    let (version, flags) = (*ipma.first()?, *ipma.get(3)?);
    let mut at = 8;
    for _ in 0..be32(ipma, 4)? {
        let item = if version < 1 { u32::from(be16(ipma, at)?) } else { be32(ipma, at)? };
        at += if version < 1 { 2 } else { 4 };
        let count = usize::from(*ipma.get(at)?);
        at += 1;
        let mut indices = Vec::with_capacity(count);
        for _ in 0..count {
            let index = if flags & 1 == 1 {
                at += 2;
                usize::from(be16(ipma, at - 2)? & 0x7fff)
            } else {
                at += 1;
                usize::from(ipma.get(at - 1)? & 0x7f)
            };
            indices.push(index);
        }
        if item == primary {
            let own = |kind: &[u8; 4]| {
                indices
                    .iter()
                    .filter_map(|&i| properties.get(i.checked_sub(1)?))
                    .find(|(k, _)| k == kind)
                    .map(|(_, b)| *b)
            };
            return size_of(own(b"ispe")?, own(b"clap"), own(b"irot"));
        }
    }
    None
}

fn size_of(ispe: &[u8], clap: Option<&[u8]>, irot: Option<&[u8]>) -> Option<(u32, u32)> {
    let (mut width, mut height) = (be32(ispe, 4)?, be32(ispe, 8)?);
    if let Some(clap) = clap {
        let ratio = |at: usize| {
            let (n, d) = (be32(clap, at)?, be32(clap, at + 4)?);
            (d > 0 && n > 0).then(|| (f64::from(n) / f64::from(d)).round() as u32)
        };
        if let (Some(w), Some(h)) = (ratio(0), ratio(8)) {
            (width, height) = (w.min(width), h.min(height));
        }
    }
    let quarter_turns = irot.and_then(|b| b.first()).map_or(0, |angle| angle & 3);
    Some(if quarter_turns % 2 == 1 { (height, width) } else { (width, height) })
}

/// The boxes in `data`, in order: their type and body.
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(size), Some(kind)) = (be32(data, at), data.get(at + 4..at + 8)) {
        let size = size as usize;
        if size < 8 || at + size > data.len() {
            break;
        }
        out.push(([kind[0], kind[1], kind[2], kind[3]], &data[at + 8..at + size]));
        at += size;
    }
    out
}

/// The body of the first box of `kind` in `data`.
fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).into_iter().find(|(k, _)| k == kind).map(|(_, body)| body)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_from_what_is_not_heif() {
        assert_eq!(displayed_size(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), None);
        assert_eq!(displayed_size(b"garbage"), None);
    }
}
