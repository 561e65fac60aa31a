package http

import (
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tripcap/tripcap"
)

var pathParam = regexp.MustCompile(`\{([a-zA-Z]+)\}`)

// OpenAPI builds the OpenAPI 3.1 document of the native API from the route
// table that also registers the handlers, so the two cannot disagree.
func (s *Server) OpenAPI() map[string]any {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, rt := range s.routes {
		op := map[string]any{"operationId": rt.ID, "summary": rt.Summary}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": q.Type}})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch rt.Auth {
		case "join":
			op["security"] = []any{map[string]any{"joinToken": []any{}}}
		case "anonymous":
			op["security"] = []any{}
		default:
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		}
		if rt.Perm != "" {
			op["x-tripcap-permission"] = string(rt.Perm)
		}
		if rt.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": content(rt.Request, schemas)}
		}
		status := rt.Status
		if status == 0 {
			status = 200
		}
		okResp := map[string]any{"description": http.StatusText(status)}
		if rt.Response != nil {
			okResp["content"] = content(rt.Response, schemas)
		}
		errResp := map[string]any{"description": "error", "content": content(ErrorBody{}, schemas)}
		op["responses"] = map[string]any{strconv.Itoa(status): okResp, "default": errResp}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info":    map[string]any{"title": "tripcap API", "version": tripcap.Version, "description": "Alert-triggered packet capture: native REST API."},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer":    map[string]any{"type": "http", "scheme": "bearer", "description": "a user's or service principal's token (tc_pat_…, or a JWT from /oauth2/token), the bootstrap admin token, or an agent credential"},
				"joinToken": map[string]any{"type": "http", "scheme": "bearer", "description": "a join token (tc_join_…)"},
			},
		},
	}
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, 200, s.OpenAPI())
	return nil
}

func content(v any, schemas map[string]any) map[string]any {
	if v == "binary" {
		return map[string]any{"application/octet-stream": map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}
	}
	return map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(v), schemas)}}
}

var timeType = reflect.TypeOf(time.Time{})

// schemaOf describes t as a JSON Schema, registering named structs as components.
func schemaOf(t reflect.Type, schemas map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), schemas)}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		name := schemaName(t)
		if _, ok := schemas[name]; !ok {
			schemas[name] = map[string]any{} // placeholder: breaks recursion
			props := map[string]any{}
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := f.Tag.Get("json")
				if !f.IsExported() || tag == "-" {
					continue
				}
				n, _, _ := strings.Cut(tag, ",")
				if n == "" {
					n = f.Name
				}
				props[n] = schemaOf(f.Type, schemas)
			}
			schemas[name] = map[string]any{"type": "object", "properties": props}
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

// schemaName names a struct for components: List[T] becomes ListOfT.
func schemaName(t reflect.Type) string {
	n := t.Name()
	if i := strings.Index(n, "["); i >= 0 {
		inner := n[i+1 : len(n)-1]
		inner = inner[strings.LastIndexAny(inner, "./*")+1:]
		n = n[:i] + "Of" + inner
	}
	return n
}
