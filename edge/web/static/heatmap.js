// The heatmap overlay, drawn here from the class activation map the device sends (a 7 x 7 grid of
// numbers) and the film this page already holds: the same steps, colour table and weights as the
// device's own overlay (edge/heatmap.py), so the device spends no time on pictures.
"use strict";

window.PneumoHeatmap = (function () {
  const SIDE = 448; // the overlay's long side, px, at the film's aspect ratio (as the device's)

  function overlaySize(width, height) {
    const scale = SIDE / Math.max(width, height);
    return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
  }

  // Positive contributions divided by their maximum, as levels 0..255; all 0 when none is positive.
  function levels(cam) {
    const peak = Math.max(0, ...cam.flat());
    return cam.map((row) => row.map((v) => (peak > 0 ? Math.round((Math.max(v, 0) / peak) * 255) : 0)));
  }

  // For each of `out` pixels, the two source cells and the weight of the second: pixel centres
  // aligned, edges clamped (what Pillow's bilinear resize does when enlarging).
  function taps(cells, out) {
    const low = new Int32Array(out), high = new Int32Array(out), frac = new Float32Array(out);
    for (let i = 0; i < out; i++) {
      const x = Math.min(Math.max(((i + 0.5) * cells) / out - 0.5, 0), cells - 1);
      low[i] = Math.floor(x);
      high[i] = Math.min(low[i] + 1, cells - 1);
      frac[i] = x - low[i];
    }
    return { low, high, frac };
  }

  function upsample(grid, width, height) {
    const xs = taps(grid[0].length, width), ys = taps(grid.length, height);
    const out = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      const a = grid[ys.low[y]], b = grid[ys.high[y]], fy = ys.frac[y];
      for (let x = 0; x < width; x++) {
        const l = xs.low[x], h = xs.high[x], fx = xs.frac[x];
        const top = a[l] + (a[h] - a[l]) * fx;
        const bottom = b[l] + (b[h] - b[l]) * fx;
        out[y * width + x] = Math.round(top + (bottom - top) * fy);
      }
    }
    return out;
  }

  // The film (an ImageBitmap or a loaded <img>) in grey on `canvas`, the map blended over it:
  // grey + (colour - grey) * weight / 255, with the colour and weight of each pixel's level.
  function draw(canvas, picture, heatmap) {
    const [width, height] = overlaySize(picture.width, picture.height);
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(picture, 0, 0, width, height);
    const image = context.getImageData(0, 0, width, height);
    const px = image.data;
    const heat = upsample(levels(heatmap.cam), width, height);
    const colours = heatmap.colormap, weights = heatmap.weights;
    for (let i = 0, o = 0; i < heat.length; i++, o += 4) {
      const grey = Math.round(0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2]); // as Pillow's "L"
      const colour = colours[heat[i]], weight = weights[heat[i]] / 255;
      px[o] = grey + Math.round((colour[0] - grey) * weight);
      px[o + 1] = grey + Math.round((colour[1] - grey) * weight);
      px[o + 2] = grey + Math.round((colour[2] - grey) * weight);
      px[o + 3] = 255;
    }
    context.putImageData(image, 0, 0);
  }

  function clear(canvas) {
    canvas.width = canvas.width; // resets the canvas: every pixel transparent
  }

  // The colour bar under the overlay: level 0 at the left, 255 at the right.
  function legend(canvas, heatmap) {
    canvas.width = heatmap.colormap.length;
    canvas.height = 1;
    const context = canvas.getContext("2d");
    const image = context.createImageData(canvas.width, 1);
    heatmap.colormap.forEach((colour, i) => image.data.set([colour[0], colour[1], colour[2], 255], 4 * i));
    context.putImageData(image, 0, 0);
  }

  // What the overlay is drawn on: the grey film the device sent (DICOM, TIFF, 16-bit films,
  // camera frames), else the uploaded file itself, decoded here.
  async function picture(heatmap, file) {
    if (heatmap.film_jpeg_base64) {
      const img = new Image();
      img.src = "data:image/jpeg;base64," + heatmap.film_jpeg_base64;
      await img.decode();
      return img;
    }
    return createImageBitmap(file);
  }

  // A small copy of the overlay as a data: address, for the list of this session's results.
  function thumbnail(canvas, side) {
    const small = document.createElement("canvas");
    const [width, height] = [side, Math.max(1, Math.round((side * canvas.height) / canvas.width))];
    small.width = width;
    small.height = height;
    small.getContext("2d").drawImage(canvas, 0, 0, width, height);
    return small.toDataURL("image/jpeg", 0.8);
  }

  return { draw, clear, legend, picture, thumbnail };
})();
