package arm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

// Insights bodies are read strictly: a property tripcap does not know is
// refused by its path, never dropped, since a rule missing a setting its
// author gave fires when the author did not mean it to.

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	timeType       = reflect.TypeFor[time.Time]()
	unmarshalerTyp = reflect.TypeFor[json.Unmarshaler]()
)

// decodeStrict decodes data into v after checking that every property in
// data is one of v's (extra names more, at the top level); errors name the
// property by its path from prefix ("properties.criteria").
func decodeStrict(prefix string, data []byte, v any, extra ...string) error {
	var generic any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&generic); err != nil {
		return invalid(prefix, "not valid JSON: %v", err)
	}
	if d.More() {
		return invalid(prefix, "not valid JSON: more than one value")
	}
	if err := checkFields(prefix, generic, reflect.TypeOf(v), extra); err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(prefix, err)
	}
	return nil
}

// jsonError names the property a decoding error is about.
func jsonError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return invalid(join(prefix, te.Field), "a JSON %s where %s is expected", te.Value, kindName(te.Type))
	}
	var e *tripcap.Error
	if errors.As(err, &e) {
		// A tripcap type's own decoder names the field within it.
		return tripcap.Errorf(e.Code, "%s", prefixed(prefix, e.Message))
	}
	return invalid(prefix, "%v", err)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// checkFields walks a generic JSON value against the Go type it will be
// decoded into, refusing object keys the type has no field for. Keys
// compare exactly (Azure's property names are camelCase and its clients
// send them so); json.RawMessage and types with their own decoder are
// checked by their caller.
func checkFields(path string, v any, t reflect.Type, extra []string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || t == rawMessageType || t == timeType || (t.Kind() != reflect.Interface && reflect.PointerTo(t).Implements(unmarshalerTyp)) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil // json.Unmarshal names the type mismatch
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				if slices.Contains(extra, k) {
					continue
				}
				return invalid(join(path, k), "not a property tripcap knows here; it is refused rather than ignored")
			}
			if err := checkFields(join(path, k), obj[k], ft, nil); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			if err := checkFields(fmt.Sprintf("%s[%d]", path, i), e, t.Elem(), nil); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if err := checkFields(fmt.Sprintf("%s[%q]", path, k), e, t.Elem(), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types,
// promoting the fields of embedded structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	}
	return path + "." + field
}

// prefixed puts prefix before a message that starts with a field name
// ("criteria.allOf[0].operator: …" → "properties.criteria.allOf[0].operator: …").
func prefixed(prefix, msg string) string {
	if prefix == "" {
		return msg
	}
	return prefix + "." + msg
}

// invalid is EINVALID about field.
func invalid(field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field == "" {
		return tripcap.Errorf(tripcap.EINVALID, "%s", msg)
	}
	return tripcap.Errorf(tripcap.EINVALID, "%s: %s", field, msg)
}

// outsideProperties are the fields of a tripcap rule or group that an ARM
// resource has outside its properties (the name is the path's, the rest
// the envelope's).
var outsideProperties = []string{"name", "id", "body", "tags", "subscriptionId", "resourceGroup", "subscriptionId, resourceGroup"}

// withPrefix puts prefix before the field an EINVALID from a tripcap
// validator names, when that field is one of the resource's properties;
// other errors pass unchanged.
func withPrefix(prefix string, err error) error {
	var e *tripcap.Error
	if err == nil || !errors.As(err, &e) || e.Code != tripcap.EINVALID {
		return err
	}
	field, _, _ := strings.Cut(e.Message, ":")
	if root, _, _ := strings.Cut(strings.SplitN(field, "[", 2)[0], "."); slices.Contains(outsideProperties, root) || slices.Contains(outsideProperties, field) {
		return err
	}
	return tripcap.Errorf(e.Code, "%s", prefixed(prefix, e.Message))
}
