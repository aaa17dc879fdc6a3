// The quantization report as one self-contained HTML page: the data as inline JSON, the charts drawn
// as inline SVG by an inline script (no external resources, no network), plus a plain-HTML accuracy
// table so the numbers read without JavaScript too.

/** Per-layer error of the int8 model. */
export interface ReportLayer {
  name: string;
  type: string;
  localSqnr: number;
  accumulatedSqnr: number;
}

/** An activation histogram (float model, calibration images) with the int8 clipping range. */
export interface ReportHistogram {
  name: string;
  lo: number;
  hi: number;
  counts: number[];
  clipLo: number;
  clipHi: number;
}

/** Per-output-channel weight ranges of a layer before and after cross-layer equalization. */
export interface ReportWeightRange {
  name: string;
  before: number[];
  after: number[];
}

/** Accuracy of one configuration on the evaluation images. */
export interface ReportAccuracy {
  config: string;
  top1: number;
  top5: number;
  count: number;
  note?: string;
}

/** Everything the page shows. */
export interface ReportData {
  title: string;
  model: string;
  label: string;
  qconfig: string;
  dataset: string;
  calibImages: number;
  evalImages: number;
  /** Whether the model itself was equalized (else the weight charts show what equalization would do). */
  equalized: boolean;
  layers: ReportLayer[];
  histograms: ReportHistogram[];
  weightRanges: ReportWeightRange[];
  accuracy: ReportAccuracy[];
  generated: string;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside a <script> element (no "</script>", no U+2028/9 surprises). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? (Number.isNaN(x) ? null : x > 0 ? 'Infinity' : '-Infinity') : x))
    .replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}tr.best td{font-weight:bold}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #eee;padding:6px}
figcaption{font-size:11px;color:#555;max-width:260px;overflow-wrap:anywhere}
.sqnr-bar{fill:#4a7fb5}.sqnr-bar.low{fill:#d0463c}.acc-bar{fill:#4a7fb5}
.hist-bin{fill:#888}.clip{stroke:#d0463c;stroke-width:1.5}.range-before{fill:#c9a227}.range-after{fill:#4a7fb5}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
`;

// Runs in the browser: builds the SVG charts from the inline JSON.
const SCRIPT = `
(function(){
var D=JSON.parse(document.getElementById('report-data').textContent);
function num(v){return v==='Infinity'?Infinity:v==='-Infinity'?-Infinity:v;}
var NS='http://www.w3.org/2000/svg';
function el(n,a,p){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);if(p)p.appendChild(e);return e;}
function txt(n,a,t,p){var e=el(n,a,p);e.textContent=t;return e;}
// per-layer SQNR bars
(function(){
  var host=document.getElementById('sqnr-chart-host');var L=D.layers;var rowH=14,left=220,width=560;
  var vals=L.map(function(l){var v=num(l.localSqnr);return isFinite(v)?v:60;});
  var max=Math.max.apply(null,vals.concat([1]));
  var svg=el('svg',{'class':'sqnr-chart',width:left+width+120,height:L.length*rowH+20,role:'img'},host);
  L.forEach(function(l,i){
    var v=vals[i],y=10+i*rowH,w=Math.max(1,width*Math.max(v,0)/max);
    txt('text',{x:left-6,y:y+10,'text-anchor':'end','font-size':10},l.name,svg);
    var r=el('rect',{'class':'sqnr-bar'+(v<20?' low':''),x:left,y:y+1,width:w,height:rowH-3,'data-layer':l.name,'data-sqnr':String(num(l.localSqnr))},svg);
    txt('title',{},l.name+': local SQNR '+v.toFixed(2)+' dB, accumulated '+Number(num(l.accumulatedSqnr)).toFixed(2)+' dB',r);
    txt('text',{x:left+w+4,y:y+10,'font-size':10},v.toFixed(1)+' dB (acc. '+Number(num(l.accumulatedSqnr)).toFixed(1)+')',svg);
  });
})();
// activation histograms with the clipping range
(function(){
  var host=document.getElementById('histograms-host');
  D.histograms.forEach(function(h){
    var fig=document.createElement('figure');fig.className='act-hist';fig.setAttribute('data-layer',h.name);host.appendChild(fig);
    var W=260,H=110,lo=Math.min(h.lo,h.clipLo),hi=Math.max(h.hi,h.clipHi),span=(hi-lo)||1;
    var svg=el('svg',{width:W,height:H},fig);
    var mx=Math.max.apply(null,h.counts.map(function(c){return Math.log1p(c);}).concat([1e-9]));
    var bw=(h.hi-h.lo)/h.counts.length;
    h.counts.forEach(function(c,i){
      var x0=(h.lo+i*bw-lo)/span*W,x1=(h.lo+(i+1)*bw-lo)/span*W,bh=(H-20)*Math.log1p(c)/mx;
      el('rect',{'class':'hist-bin',x:x0,y:H-12-bh,width:Math.max(0.5,x1-x0),height:bh},svg);
    });
    [['clip-lo',h.clipLo],['clip-hi',h.clipHi]].forEach(function(p){var x=(p[1]-lo)/span*W;el('line',{'class':'clip '+p[0],x1:x,x2:x,y1:4,y2:H-12,'data-value':String(p[1])},svg);});
    var cap=document.createElement('figcaption');cap.textContent=h.name+': observed ['+h.lo.toPrecision(3)+', '+h.hi.toPrecision(3)+'], int8 range ['+h.clipLo.toPrecision(3)+', '+h.clipHi.toPrecision(3)+'] (log counts)';fig.appendChild(cap);
  });
})();
// per-channel weight ranges before / after equalization
(function(){
  var host=document.getElementById('weight-ranges-host');
  D.weightRanges.forEach(function(w){
    var fig=document.createElement('figure');fig.className='weight-range';fig.setAttribute('data-layer',w.name);host.appendChild(fig);
    var n=w.before.length,W=Math.max(260,Math.min(560,n*3)),H=110;
    var mx=Math.max.apply(null,w.before.concat(w.after).concat([1e-12]));
    var svg=el('svg',{width:W,height:H},fig);var bw=W/n;
    for(var i=0;i<n;i++){
      var hb=(H-16)*w.before[i]/mx,ha=(H-16)*w.after[i]/mx;
      el('rect',{'class':'range-before',x:i*bw,y:H-hb,width:Math.max(0.5,bw*0.48),height:hb},svg);
      el('rect',{'class':'range-after',x:i*bw+bw*0.5,y:H-ha,width:Math.max(0.5,bw*0.48),height:ha},svg);
    }
    var mb=Math.max.apply(null,w.before),ma=Math.max.apply(null,w.after);
    var cap=document.createElement('figcaption');cap.textContent=w.name+': '+n+' channels, max range '+mb.toPrecision(3)+' -> '+ma.toPrecision(3);fig.appendChild(cap);
  });
})();
// accuracy bars next to the table
(function(){
  var host=document.getElementById('accuracy-chart-host');var A=D.accuracy;var left=240,width=420,rowH=18;
  var lo=Math.min.apply(null,A.map(function(a){return a.top1;}))-1,hi=Math.max.apply(null,A.map(function(a){return a.top1;}));
  var svg=el('svg',{'class':'accuracy-chart',width:left+width+80,height:A.length*rowH+10},host);
  A.forEach(function(a,i){var y=5+i*rowH,w=Math.max(1,width*(a.top1-lo)/((hi-lo)||1));
    txt('text',{x:left-6,y:y+12,'text-anchor':'end','font-size':11},a.config,svg);
    el('rect',{'class':'acc-bar',x:left,y:y+2,width:w,height:rowH-5,'data-config':a.config},svg);
    txt('text',{x:left+w+4,y:y+12,'font-size':11},a.top1.toFixed(2)+'%',svg);});
})();
document.body.setAttribute('data-rendered','true');
})();
`;

/** Renders the report page. */
export function renderReport(d: ReportData): string {
  const best = d.accuracy.filter((a) => a.config !== 'float').reduce<ReportAccuracy | null>((b, a) => (!b || a.top1 > b.top1 ? a : b), null);
  const rows = d.accuracy.map((a) =>
    `<tr class="acc-row${a === best ? ' best' : ''}" data-config="${esc(a.config)}"><td>${esc(a.config)}</td><td>${a.top1.toFixed(2)}</td><td>${a.top5.toFixed(2)}</td><td>${a.count}</td><td>${esc(a.note ?? '')}</td></tr>`).join('\n');
  const worst = [...d.layers].sort((a, b) => a.localSqnr - b.localSqnr).slice(0, 5)
    .map((l) => `<li>${esc(l.name)} (${esc(l.type)}): ${l.localSqnr.toFixed(2)} dB</li>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(d.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${CSS}</style></head>
<body data-rendered="false">
<h1>${esc(d.title)}</h1>
<p>Model <code>${esc(d.model)}</code> (${esc(d.label)}), qconfig <code>${esc(d.qconfig)}</code>; calibration on ${d.calibImages} training images of <code>${esc(d.dataset)}</code>, accuracy on ${d.evalImages} test images. Generated ${esc(d.generated)}.</p>
<h2>Accuracy of each configuration</h2>
<table id="accuracy"><thead><tr><th>configuration</th><th>top-1 %</th><th>top-5 %</th><th>images</th><th>note</th></tr></thead><tbody>
${rows}
</tbody></table>
<div id="accuracy-chart-host"></div>
<h2>Per-layer SQNR</h2>
<p>Local SQNR: each int8 layer's output against its float layer on the same (dequantized int8) input, i.e. the error the layer adds. Accumulated: against the float model's activation. Lowest local SQNR:</p>
<ul id="worst-layers">${worst}</ul>
<div id="sqnr-chart-host"></div>
<h2>Activation histograms and clipping ranges</h2>
<p>Float activations on the calibration images (log counts) and the range the int8 qparams cover (red lines).</p>
<div id="histograms-host" class="grid"></div>
<h2>Weight range per output channel, before / after cross-layer equalization</h2>
<p class="legend"><span style="background:#c9a227"></span>before<span style="background:#4a7fb5"></span>after${d.equalized ? '' : ' (the model was not equalized: the charts show what equalization would do)'}</p>
<div id="weight-ranges-host" class="grid"></div>
<script type="application/json" id="report-data">${scriptJson(d)}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}
