"""Self-check at the training gap (model vs linear) beside the gains of both modes on the removed planes."""
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    t = r["methods"]["zaugnet"]["training"]
    g = r["gains"]
    print(f"{path:18s} steps {t.get('steps')}  self-check vs best {t.get('self_check_gain_db'):+.2f}  "
          f"direct {g['zaugnet']['gain_db']:+.2f}  transfer {g['zaugnet:transfer']['gain_db']:+.2f}")
