// Prints, for a grid of points across China, what gcoord makes of them: each line
// "lon lat gcj02_to_wgs84_lon lat bd09_to_wgs84_lon lat wgs84_to_gcj02_lon lat wgs84_to_bd09_lon lat".
import gcoord from "gcoord";

const out = [];
for (let lat = 18.5; lat <= 53.5; lat += 1.75) {
  for (let lon = 73.7; lon <= 134.7; lon += 2.45) {
    const p = [Number(lon.toFixed(4)), Number(lat.toFixed(4))];
    const g2w = gcoord.transform(p, gcoord.GCJ02, gcoord.WGS84);
    const b2w = gcoord.transform(p, gcoord.BD09, gcoord.WGS84);
    const w2g = gcoord.transform(p, gcoord.WGS84, gcoord.GCJ02);
    const w2b = gcoord.transform(p, gcoord.WGS84, gcoord.BD09);
    out.push([...p, ...g2w, ...b2w, ...w2g, ...w2b].map((v) => v.toFixed(10)).join(" "));
  }
}
console.log(out.join("\n"));
