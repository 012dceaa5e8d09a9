// Sample function as a componentize-js component of the faas:function world
// (wit/function.wit). handle(input) returns the JSON text
// {"hello": <direct_inputs.name or "world">, "lang": "js"}; throwing makes
// componentize-js return err(message), so non-JSON input fails the execution.

export function handle(input) {
  console.error(`js-hello called (${input.length} chars of input)`);
  let data = {};
  if (input.trim() !== "") {
    try {
      data = JSON.parse(input);
    } catch (e) {
      throw `input is not valid JSON: ${e.message}`;
    }
  }
  const direct = data && typeof data === "object" ? data.direct_inputs : undefined;
  const name =
    direct && typeof direct === "object" && typeof direct.name === "string"
      ? direct.name
      : "world";
  return JSON.stringify({ hello: name, lang: "js" });
}
