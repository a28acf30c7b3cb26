// One image the way the replaced Node system did it: the downloaded buffer,
// one sharp pipeline per variant (rotate by EXIF, fit inside, never enlarge,
// WebP at the same quality), sharp's defaults otherwise. Prints one JSON line
// with the same fields as bench/measure.py.
//
//     node bench/variant_sharp.js PATH
"use strict";
const fs = require("fs");
const path = require("path");
const sharp = require(path.join(__dirname, "node_modules", "sharp"));

const VARIANTS = [["thumb", 400], ["display", 1600]];  // publisher.settings.job.Settings.variants
const QUALITY = 80;                                    // the replaced system's (our VARIANT_QUALITY=q80)

function statusKb(field) {
  const match = fs.readFileSync("/proc/self/status", "utf8").match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return Number(match[1]);
}

async function main(file) {
  const rssBefore = statusKb("VmRSS");
  const cpuBefore = process.cpuUsage();
  const wallBefore = process.hrtime.bigint();
  const input = fs.readFileSync(file);  // the replaced system downloaded into a buffer
  const outputs = [];
  for (const [name, size] of VARIANTS) {
    const { data, info } = await sharp(input)
      .rotate()
      .resize(size, size, { fit: "inside", withoutEnlargement: true })
      .webp({ quality: QUALITY })
      .toBuffer({ resolveWithObject: true });
    outputs.push([name, info.width, info.height, data.length]);
  }
  const cpu = process.cpuUsage(cpuBefore);
  console.log(JSON.stringify({
    work_cpu_s: (cpu.user + cpu.system) / 1e6,
    work_wall_s: Number(process.hrtime.bigint() - wallBefore) / 1e9,
    rss_before_work_mb: rssBefore / 1024,
    peak_rss_mb: statusKb("VmHWM") / 1024,  // see bench/measure.py: not the parent's ru_maxrss
    outputs,
  }));
}

main(process.argv[2]).catch((e) => { console.error(e); process.exit(1); });
