package main

import (
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/png"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Latencies outside [minMs, maxMs] are drawn at its edges; the y axis goes
// on to topMs, room for the legend.
const (
	minMs = 0.03
	maxMs = 2000
	topMs = 20000
)

// about names the configuration of the contenders BenchmarkRefreshWindow
// runs.
var about = map[string]string{
	"bearer":      " (default)",
	"bearer-wait": " (Config.WaitForRefresh)",
	"oauth2":      " (oauth2.Transport)",
	"axios":       " (the axios port)",
}

var (
	// Opaque colours: the PNG stays small.
	requestColor = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	waitedColor  = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	windowColor  = color.RGBA{R: 225, G: 225, B: 225, A: 255}
	white        = color.RGBA{R: 255, G: 255, B: 255, A: 255}
	black        = color.RGBA{A: 255}
)

// draw writes a PNG of width×height pixels to w: one panel per contender,
// one above the other on the same time axis, with request latency (log
// scale) over the time each request started, the requests that waited for
// a refresh while their token was valid in red, and the refresh windows
// shaded.
func drawPNG(w io.Writer, runs map[string]*series, contenders []string, width, height int) error {
	var end float64
	for _, name := range contenders {
		s := runs[name]
		if s == nil {
			return fmt.Errorf("no run of contender %q in the CSV", name)
		}
		for _, r := range s.requests {
			end = max(end, r.start)
		}
	}
	plots := make([][]*plot.Plot, len(contenders))
	for i, name := range contenders {
		p, err := panel(name, runs[name], end/1e3)
		if err != nil {
			return err
		}
		if i > 0 {
			p.Legend = plot.NewLegend() // one legend, on the first panel
		}
		if i < len(contenders)-1 {
			p.X.Label.Text = ""
		}
		plots[i] = []*plot.Plot{p}
	}
	const dpi = 96
	px := func(n int) vg.Length { return vg.Length(n) * vg.Inch / dpi }
	img := vgimg.NewWith(vgimg.UseWH(px(width), px(height)), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(contenders), Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4),
		PadLeft: vg.Points(4), PadRight: vg.Points(12), PadY: vg.Points(8)}
	for i, row := range plot.Align(plots, tiles, dc) {
		plots[i][0].Draw(row[0])
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	return enc.Encode(w, quantize(img.Image()))
}

// quantize maps every pixel to the nearest colour of a small palette, the
// plot's colours mixed with its backgrounds in steps, without dithering:
// the antialiased edges of thousands of points would otherwise make a PNG
// of thousands of colours.
func quantize(img image.Image) *image.Paletted {
	var pal color.Palette
	for _, bg := range []color.RGBA{white, windowColor} {
		for _, fg := range []color.RGBA{black, requestColor, waitedColor} {
			for k := range 16 {
				pal = append(pal, mix(bg, fg, float64(k)/15))
			}
		}
	}
	out := image.NewPaletted(img.Bounds(), pal)
	stddraw.Draw(out, out.Rect, img, img.Bounds().Min, stddraw.Src)
	return out
}

// mix returns a + f·(b − a).
func mix(a, b color.RGBA, f float64) color.RGBA {
	m := func(x, y uint8) uint8 { return uint8(float64(x) + f*(float64(y)-float64(x)) + 0.5) }
	return color.RGBA{R: m(a.R, b.R), G: m(a.G, b.G), B: m(a.B, b.B), A: 255}
}

// panel is one contender's plot, its time axis from 0 to end seconds.
func panel(name string, s *series, end float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("contender=%s%s: %d requests, %d waited for a refresh with a valid token",
		name, about[name], len(s.requests), countWaited(s))
	p.X.Label.Text = "request start, s after the login"
	p.Y.Label.Text = "latency, ms"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())

	for _, w := range s.windows {
		box, err := plotter.NewPolygon(plotter.XYs{
			{X: w.start / 1e3, Y: minMs}, {X: w.end / 1e3, Y: minMs},
			{X: w.end / 1e3, Y: maxMs}, {X: w.start / 1e3, Y: maxMs},
		})
		if err != nil {
			return nil, err
		}
		box.Color = windowColor
		box.LineStyle.Width = 0
		p.Add(box)
	}
	var plain, waited plotter.XYs
	for _, r := range s.requests {
		xy := plotter.XY{X: r.start / 1e3, Y: min(max(r.ms, minMs), maxMs)}
		if r.waited {
			waited = append(waited, xy)
		} else {
			plain = append(plain, xy)
		}
	}
	for _, layer := range []struct {
		xys    plotter.XYs
		color  color.Color
		radius vg.Length
		legend string
	}{
		{plain, requestColor, 1, "request"},
		{waited, waitedColor, 1.6, "waited for a refresh, token valid"},
	} {
		sc, err := plotter.NewScatter(layer.xys)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: layer.color, Radius: layer.radius, Shape: draw.CircleGlyph{}}
		if len(layer.xys) > 0 {
			p.Add(sc)
		}
		p.Legend.Add(layer.legend, sc) // every entry, so that one legend serves every panel
	}
	p.Legend.Add("token request in flight", &swatch{windowColor})
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(6)
	// After the Adds, which widen the axes to their data.
	p.X.Min, p.X.Max = 0, end
	p.Y.Min, p.Y.Max = minMs, topMs
	return p, nil
}

func countWaited(s *series) int {
	n := 0
	for _, r := range s.requests {
		if r.waited {
			n++
		}
	}
	return n
}

// swatch is the legend entry of the shaded windows.
type swatch struct{ c color.Color }

func (s *swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{
		{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y},
		{X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y},
	})
}
