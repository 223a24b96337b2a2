package xmlrpc

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// structField is one member a Go struct type encodes to. open is the
// pre-escaped `<member><name>…</name>` so that the hot path only copies it.
type structField struct {
	name      string
	open      string
	index     []int
	omitEmpty bool
}

type structInfo struct {
	fields []structField
	err    string // a type that cannot be encoded fails the same way every time
}

var fieldCache sync.Map // reflect.Type → *structInfo

func cachedFields(t reflect.Type) *structInfo {
	if info, ok := fieldCache.Load(t); ok {
		return info.(*structInfo)
	}
	fields, err := typeFields(t)
	si := &structInfo{fields: fields}
	if err != nil {
		si.err = err.Error()
	}
	info, _ := fieldCache.LoadOrStore(t, si)
	return info.(*structInfo)
}

type candidate struct {
	structField
	depth int
}

// typeFields lists the members of t in declaration order. Embedded structs
// without a tag are flattened like encoding/json does: a shallower field hides
// deeper ones of the same name. Unlike encoding/json, two fields at the same
// depth claiming one name are an error rather than both silently vanishing —
// a result that loses a member without a word is worse than a 500.
func typeFields(t reflect.Type) ([]structField, error) {
	var cands []candidate
	var walk func(t reflect.Type, prefix []int, depth int, seen []reflect.Type)
	walk = func(t reflect.Type, prefix []int, depth int, seen []reflect.Type) {
		if slices.Contains(seen, t) {
			return // a type embedding itself through a pointer
		}
		seen = append(seen, t)
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("xmlrpc")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			index := append(slices.Clip(prefix), i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if f.Anonymous && name == "" && ft.Kind() == reflect.Struct && ft != timeType {
				walk(ft, index, depth+1, seen)
				continue
			}
			if !f.IsExported() {
				continue
			}
			c := candidate{depth: depth}
			if name == "" {
				name = f.Name
			}
			c.name = name
			c.index = index
			c.omitEmpty = opts == "omitempty"
			cands = append(cands, c)
		}
	}
	walk(t, nil, 0, nil)

	byName := map[string][]candidate{}
	for _, c := range cands {
		byName[c.name] = append(byName[c.name], c)
	}
	var out []structField
	for _, c := range cands {
		group := byName[c.name]
		best := slices.MinFunc(group, func(a, b candidate) int { return a.depth - b.depth })
		if best.depth != c.depth {
			continue // hidden by a shallower field
		}
		if n := countDepth(group, c.depth); n > 1 {
			return nil, encodeErrorf("cannot encode %s: %d fields at the same depth encode as member %q", t, n, c.name)
		}
		var b bytes.Buffer
		b.WriteString("<member><name>")
		e := getEncoder(&b)
		e.text(c.name)
		e.w.Flush()
		putEncoder(e)
		b.WriteString("</name>")
		c.open = b.String()
		out = append(out, c.structField)
	}
	return out, nil
}

func countDepth(group []candidate, depth int) int {
	n := 0
	for _, c := range group {
		if c.depth == depth {
			n++
		}
	}
	return n
}
