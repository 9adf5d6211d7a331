// Placeholders as a page would show them before the image arrives: the BlurHash decoded onto
// a small canvas (https://blurha.sh, the reference algorithm), and the dominant colour.

const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

const decode83 = (s) => [...s].reduce((v, c) => v * 83 + DIGITS.indexOf(c), 0);
const toLinear = (v) => ((v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const toSrgb = (v) => {
  v = Math.max(0, Math.min(1, v));
  return Math.round((v <= 0.0031308 ? v * 12.92 : 1.055 * v ** (1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

/** RGBA pixels of `hash` at `width` x `height`, or null when it is not a BlurHash. */
export function decodeBlurhash(hash, width, height) {
  if (!hash || hash.length < 6) return null;
  const size = decode83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  if (hash.length !== 4 + 2 * nx * ny) return null;
  const max = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = [Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19];
    colors.push(q.map((c) => signPow((c - 9) / 9, 2) * max));
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const rgb = [0, 0, 0];
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          rgb[0] += c[0] * basis;
          rgb[1] += c[1] * basis;
          rgb[2] += c[2] * basis;
        }
      }
      const at = 4 * (x + y * width);
      pixels.set([toSrgb(rgb[0]), toSrgb(rgb[1]), toSrgb(rgb[2]), 255], at);
    }
  }
  return pixels;
}

/** A canvas painting `hash` with the image's aspect ratio (32 px on the long side). */
export function blurhashCanvas(hash, width, height, label) {
  const long = 32;
  const w = width >= height ? long : Math.max(1, Math.round((long * width) / height));
  const hgt = height > width ? long : Math.max(1, Math.round((long * height) / width));
  const pixels = decodeBlurhash(hash, w, hgt);
  if (!pixels) return null;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = hgt;
  canvas.className = "blurhash";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
  canvas.getContext("2d").putImageData(new ImageData(pixels, w, hgt), 0, 0);
  return canvas;
}
